package loopguard

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// rep is n copies of b.
func rep(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// TestInstructionImmediates puts every immediate shape the decoder knows in
// front of a loop: the guard must land right after the loop's block type,
// so a misread immediate shows up as a misplaced guard or an error. The
// immediates contain 0x03 (the loop opcode) and 0x0b (end) where they can,
// to catch an immediate read as an instruction. The bodies need not
// validate; wazero does not see them.
func TestInstructionImmediates(t *testing.T) {
	memarg := bs(0x03, 0x8b, 0x01) // align 3, offset 139 (two bytes)
	tests := []struct {
		name  string
		instr []byte
	}{
		{"unreachable nop", bs(opUnreachable, opNop)},
		{"block with value type", bs(opBlock, typeI32, opEnd)},
		{"block with type index", bs(opBlock, 0x03, opEnd)},
		{"block with two-byte type index", bs(opBlock, 0xc0, 0x00, opEnd)}, // 64 as s33
		{"block with (ref null func)", bs(opBlock, refNullable, 0x70, opEnd)},
		{"block with (ref $3)", bs(opBlock, refNonNull, 0x03, opEnd)},
		{"if else", bs(opIf, blockEmpty, opNop, opElse, opNop, opEnd)},
		{"try_table with all catch kinds", bs(opTryTable, blockEmpty, 4,
			catchTag, 0x03, 0x00, catchTagRef, 0x03, 0x00, catchAll, 0x00, catchAllRef, 0x00, opEnd)},
		{"throw, throw_ref", bs(opThrow, 0x03, opThrowRef)},
		{"br, br_if", bs(opBr, 0x00, opBrIf, 0x00)},
		{"br_table", bs(opBrTable, 0x03, 0x00, 0x00, 0x00, 0x00)},
		{"br_table with an empty vector", bs(opBrTable, 0x00, 0x00)},
		{"return", bs(opReturn)},
		{"call_indirect, return_call_indirect", bs(opCallIndirect, 0x03, 0x00, opReturnCallIndirect, 0x83, 0x01, 0x03)},
		{"call_ref, return_call_ref", bs(opCallRef, 0x03, opReturnCallRef, 0x03)},
		{"drop, select", bs(opDrop, opSelect)},
		{"typed select", bs(opSelectTyped, 0x01, typeI32)},
		{"typed select with a reference type", bs(opSelectTyped, 0x02, refNullable, 0x70, refNonNull, 0x83, 0x01)},
		{"locals and globals", bs(opLocalGet, 0x03, opLocalSet, 0x83, 0x01, opLocalTee, 0x03, opGlobalGet, 0x03, opGlobalSet, 0x03)},
		{"table.get, table.set", bs(opTableGet, 0x03, opTableSet, 0x03)},
		{"i32.load", cat(bs(opI32Load), memarg)},
		{"i64.store32", cat(bs(opI64Store32), memarg)},
		{"memory.size, memory.grow", bs(opMemorySize, 0, opMemoryGrow, 0)},
		{"i32.const", cat(bs(opI32Const), appendS32(nil, -1<<31))},
		{"i32.const 3", bs(opI32Const, 0x03)},
		{"i64.const", cat(bs(opI64Const), rep(0x80, 9), bs(0x7f))}, // min int64
		{"f32.const", cat(bs(opF32Const), rep(0x03, 4))},
		{"f64.const", cat(bs(opF64Const), rep(0x0b, 8))},
		{"numeric", bs(opI32Eqz, opI32Add, 0xbf, 0xc0, opI64Extend32S)},
		{"ref.null func, extern, exn and a type", bs(opRefNull, 0x70, opRefNull, 0x6f, opRefNull, 0x69, opRefNull, 0x03)},
		{"ref.is_null, ref.as_non_null", bs(opRefIsNull, opRefAsNonNull)},
		{"br_on_null, br_on_non_null", bs(opBrOnNull, 0x00, opBrOnNonNull, 0x00)},
		{"saturating truncations", bs(prefixMisc, 0, prefixMisc, 7)},
		{"prefix opcode in two bytes", bs(prefixMisc, 0x87, 0x00)},
		{"memory.init, data.drop", bs(prefixMisc, 8, 0x03, 0x00, prefixMisc, 9, 0x03)},
		{"memory.copy, memory.fill", bs(prefixMisc, 10, 0, 0, prefixMisc, 11, 0)},
		{"table.init, elem.drop, table.copy", bs(prefixMisc, 12, 0x03, 0x00, prefixMisc, 13, 0x03, prefixMisc, 14, 0x00, 0x03)},
		{"table.grow, table.size, table.fill", bs(prefixMisc, 15, 0x03, prefixMisc, 16, 0x03, prefixMisc, 17, 0x03)},
		{"v128.load, v128.store", cat(bs(prefixSIMD, 0x00), memarg, bs(prefixSIMD, 0x0b), memarg)},
		{"v128.load64_zero", cat(bs(prefixSIMD, 0x5d), memarg)},
		{"v128.const", cat(bs(prefixSIMD, 0x0c), rep(0x03, 16))},
		{"i8x16.shuffle", cat(bs(prefixSIMD, 0x0d), rep(0x0b, 16))},
		{"extract and replace lane", bs(prefixSIMD, 0x15, 0x03, prefixSIMD, 0x22, 0x01)},
		{"load and store lane", cat(bs(prefixSIMD, 0x54), memarg, bs(0x03, prefixSIMD, 0x5b), memarg, bs(0x01))},
		{"SIMD without immediates", bs(prefixSIMD, 0x0e, prefixSIMD, 0x53, prefixSIMD, 0x5e)},
		{"SIMD opcodes in two bytes", bs(prefixSIMD, 0x80, 0x01, prefixSIMD, 0xff, 0x01)},
		{"memory.atomic.notify, wait32, wait64", cat(bs(prefixAtomic, 0), memarg, bs(prefixAtomic, 1), memarg, bs(prefixAtomic, 2), memarg)},
		{"atomic.fence", bs(prefixAtomic, 3, 0)},
		{"atomic loads, stores, rmw", cat(bs(prefixAtomic, 0x10), memarg, bs(prefixAtomic, 0x4e), memarg)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := oneFunc(bs(0), tt.instr, loop, tt.instr, end, end)
			want := mod(
				sec(idType, vec(tVoid)),
				sec(idImport, vec(yieldImport(0))),
				sec(idFunction, vec(u(0))),
				sec(idGlobal, vec(guardGlobal)),
				sec(idCode, vec(code(tt.instr, loop, guard(0, 0), tt.instr, end, end))),
			)
			got, err := Instrument(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rewrite differs\n got: %s\nwant: %s", hex.EncodeToString(got), hex.EncodeToString(want))
			}
		})
	}
}

// TestSIMDOpcodes checks the table against the opcode list of the SIMD
// proposal's final binary encoding: 236 instructions.
func TestSIMDOpcodes(t *testing.T) {
	counts := map[simdImmediate]int{}
	for _, k := range simdImmediates {
		counts[k]++
	}
	want := map[simdImmediate]int{
		simdUnknown:    20,
		simdNone:       198,
		simdMemarg:     14,
		simdMemargLane: 8,
		simdLane:       14,
		simdBytes16:    2,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("immediate kind %d: %d opcodes, want %d", k, counts[k], n)
		}
	}
	// Opcodes that loads, stores and lanes sit next to.
	for op, k := range map[int]simdImmediate{
		0x0b: simdMemarg, 0x0c: simdBytes16, 0x0d: simdBytes16, 0x0e: simdNone,
		0x14: simdNone, 0x15: simdLane, 0x22: simdLane, 0x23: simdNone,
		0x53: simdNone, 0x54: simdMemargLane, 0x5b: simdMemargLane, 0x5c: simdMemarg,
		0x5d: simdMemarg, 0x5e: simdNone, 0x99: simdNone, 0x9a: simdUnknown, 0x9b: simdNone,
		0xee: simdUnknown, 0xff: simdNone,
	} {
		if simdImmediates[op] != k {
			t.Errorf("opcode %#x: kind %d, want %d", op, simdImmediates[op], k)
		}
	}
}

func TestReaderLEB128(t *testing.T) {
	u32 := []struct {
		in   []byte
		want uint32
		err  string
	}{
		{bs(0), 0, ""},
		{bs(0x7f), 127, ""},
		{bs(0x80, 0x01), 128, ""},
		{bs(0x80, 0x00), 0, ""}, // not minimal, allowed
		{bs(0xff, 0xff, 0xff, 0xff, 0x0f), 0xffffffff, ""},
		{bs(0xff, 0xff, 0xff, 0xff, 0x10), 0, "overflows"},
		{bs(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 0, "overflows"},
		{bs(0x80), 0, "unexpected end"},
		{nil, 0, "unexpected end"},
	}
	for _, tt := range u32 {
		r := &reader{buf: tt.in}
		got, err := r.u32()
		if msg := errString(err); got != tt.want || !contains(msg, tt.err) {
			t.Errorf("u32(%x) = %d, %q; want %d, %q", tt.in, got, msg, tt.want, tt.err)
		}
	}
	signed := []struct {
		bits int
		in   []byte
		want int64
		err  string
	}{
		{32, bs(0x7f), -1, ""},
		{32, bs(0x3f), 63, ""},
		{32, bs(0xc0, 0x00), 64, ""},
		{32, bs(0x80, 0x7f), -128, ""},
		{32, bs(0x90, 0xce, 0x00), Budget, ""},
		{32, bs(0xff, 0xff, 0xff, 0xff, 0x07), 1<<31 - 1, ""},
		{32, bs(0x80, 0x80, 0x80, 0x80, 0x78), -1 << 31, ""},
		{32, bs(0xff, 0xff, 0xff, 0xff, 0x0f), 0, "overflows"},
		{32, bs(0x80, 0x80, 0x80, 0x80, 0x70), 0, "overflows"},
		{32, bs(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 0, "longer than 5 bytes"},
		{33, bs(0xff, 0xff, 0xff, 0xff, 0x0f), 1<<32 - 1, ""},
		{33, bs(0x80, 0x80, 0x80, 0x80, 0x70), -1 << 32, ""},
		{33, bs(0xff, 0xff, 0xff, 0xff, 0x1f), 0, "overflows"},
		{33, bs(0x40), -64, ""},
		{64, cat(rep(0xff, 9), bs(0x00)), 1<<63 - 1, ""},
		{64, cat(rep(0x80, 9), bs(0x7f)), -1 << 63, ""},
		{64, cat(rep(0x80, 9), bs(0x01)), 0, "overflows"},
		{64, rep(0x80, 10), 0, "longer than 10 bytes"},
		{64, bs(0xff), 0, "unexpected end"},
	}
	for _, tt := range signed {
		r := &reader{buf: tt.in}
		got, err := r.signed(tt.bits)
		if msg := errString(err); got != tt.want || !contains(msg, tt.err) {
			t.Errorf("s%d(%x) = %d, %q; want %d, %q", tt.bits, tt.in, got, msg, tt.want, tt.err)
		}
	}
	for _, v := range []int32{0, 1, -1, 63, 64, -64, -65, Budget, 1<<31 - 1, -1 << 31} {
		b := appendS32(nil, v)
		got, err := (&reader{buf: b}).signed(32)
		if err != nil || got != int64(v) {
			t.Errorf("appendS32(%d) = %x, reads back as %d, %v", v, b, got, err)
		}
	}
	for _, v := range []uint32{0, 127, 128, 1<<21 - 1, 1 << 21, 1<<32 - 1} {
		b := appendU32(nil, v)
		got, err := (&reader{buf: b}).u32()
		if err != nil || got != v {
			t.Errorf("appendU32(%d) = %x, reads back as %d, %v", v, b, got, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// contains reports whether s contains sub, where "" matches only "".
func contains(s, sub string) bool {
	if sub == "" {
		return s == ""
	}
	return strings.Contains(s, sub)
}

// TestGuardCode checks the guard against the sequence the package comment
// documents.
func TestGuardCode(t *testing.T) {
	for _, tt := range []struct{ global, yield uint32 }{{0, 0}, {2, 1}, {200, 300}} {
		got := guardCode(tt.global, tt.yield)
		want := cat(
			globalGet(tt.global), i32Const(1), bs(opI32Sub), bs(opGlobalSet), u(tt.global),
			globalGet(tt.global), bs(opI32Eqz, opIf, blockEmpty),
			i32Const(Budget), bs(opGlobalSet), u(tt.global), call(tt.yield), end,
		)
		if !bytes.Equal(got, want) {
			t.Errorf("guardCode(%d, %d) = %x, want %x", tt.global, tt.yield, got, want)
		}
	}
}
