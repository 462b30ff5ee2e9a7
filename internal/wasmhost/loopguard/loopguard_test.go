package loopguard

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

var (
	tVoid = functype(none, none)
	tII   = functype(i32, i32)
)

// subsec is a subsection of the name section.
func subsec(id byte, content ...[]byte) []byte { return sec(id, content...) }

// global imports and definitions.
func importGlobal(module, name string) []byte {
	return cat(str(module), str(name), bs(kindGlobal, typeI32, 0))
}

// instrumentCase is a module and its expected rewrite, both hand-assembled.
type instrumentCase struct {
	name     string
	in       []byte
	want     []byte
	features api.CoreFeatures // to compile in and want with; 0: features
}

func instrumentCases() []instrumentCase {
	countdown := cat(localGet(0), i32Const(1), bs(opI32Sub, opLocalTee, 0, opBrIf, 0)) // n-- until 0
	var cases []instrumentCase
	add := func(c instrumentCase) { cases = append(cases, c) }

	add(instrumentCase{
		name: "loop in a function, no imports",
		in: mod(
			sec(idType, vec(tII)),
			sec(idFunction, vec(u(0))),
			sec(idExport, vec(export("f", kindFunc, 0))),
			sec(idCode, vec(code(loop, countdown, end, localGet(0), end))),
		),
		want: mod(
			sec(idType, vec(tII, tVoid)), // () -> () appended: type 1
			sec(idImport, vec(yieldImport(1))),
			sec(idFunction, vec(u(0))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idExport, vec(export("f", kindFunc, 1))),
			sec(idCode, vec(code(loop, guard(0, 0), countdown, end, localGet(0), end))),
		),
	})

	ifElse := func(then, els []byte) []byte {
		return cat(localGet(0), bs(opIf, blockEmpty), then, bs(opElse), els, end)
	}
	add(instrumentCase{
		name: "nested loops, blocks, if and every block type form",
		in: mod(
			sec(idType, vec(tII, tVoid)), // () -> () exists: reused
			sec(idFunction, vec(u(0))),
			sec(idCode, vec(code(
				block, loop, ifElse(cat(loop, end), cat(loop, end)), end, end,
				localGet(0), bs(opLoop, 0), end, // loop (type 0): i32 -> i32
				bs(opLoop, typeI32), i32Const(5), end, // loop (result i32)
				bs(opDrop), end,
			))),
		),
		want: mod(
			sec(idType, vec(tII, tVoid)),
			sec(idImport, vec(yieldImport(1))),
			sec(idFunction, vec(u(0))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idCode, vec(code(
				block, loop, guard(0, 0),
				ifElse(cat(loop, guard(0, 0), end), cat(loop, guard(0, 0), end)), end, end,
				localGet(0), bs(opLoop, 0), guard(0, 0), end,
				bs(opLoop, typeI32), guard(0, 0), i32Const(5), end,
				bs(opDrop), end,
			))),
		),
	})

	// Function 0 is imported; 1 and 2 call each other's indices.
	add(instrumentCase{
		name: "functions that call each other after imports",
		in: mod(
			sec(idType, vec(tVoid, tII)),
			sec(idImport, vec(importFunc("env", "imp", 1), importGlobal("env", "g"))),
			sec(idFunction, vec(u(1), u(1))),
			sec(idGlobal, vec(cat(bs(typeI32, 0), constExpr(i32Const(7))))),
			sec(idExport, vec(
				export("f1", kindFunc, 1), export("f2", kindFunc, 2),
				export("imp", kindFunc, 0), export("g", kindGlobal, 0), export("g2", kindGlobal, 1),
			)),
			sec(idCode, vec(
				code(localGet(0), call(0), call(2), bs(opReturnCall), u(2), end),
				code(loop, end, localGet(0), call(1), end),
			)),
		),
		want: mod(
			sec(idType, vec(tVoid, tII)),
			sec(idImport, vec(importFunc("env", "imp", 1), importGlobal("env", "g"), yieldImport(0))),
			sec(idFunction, vec(u(1), u(1))),
			sec(idGlobal, vec(cat(bs(typeI32, 0), constExpr(i32Const(7))), guardGlobal)), // global 2
			sec(idExport, vec(
				export("f1", kindFunc, 2), export("f2", kindFunc, 3),
				export("imp", kindFunc, 0), export("g", kindGlobal, 0), export("g2", kindGlobal, 1),
			)),
			sec(idCode, vec(
				code(localGet(0), call(0), call(3), bs(opReturnCall), u(3), end),
				code(loop, guard(2, 1), end, localGet(0), call(2), end),
			)),
		),
	})

	add(instrumentCase{
		name: "start section",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idFunction, vec(u(0), u(0))),
			sec(idStart, u(1)),
			sec(idCode, vec(code(end), code(loop, end, end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idFunction, vec(u(0), u(0))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idStart, u(2)),
			sec(idCode, vec(code(end), code(loop, guard(0, 0), end, end))),
		),
	})

	// Function 0 is imported, 1 and 2 are defined.
	elems := func(f func(uint32) uint32) []byte {
		funcref := bs(typeFuncref)
		return sec(idElement, vec(
			cat(u(0), constExpr(i32Const(0)), vec(u(f(1)), u(f(2)), u(f(0)))),
			cat(u(1), bs(0), vec(u(f(2)))),
			cat(u(2), u(0), constExpr(i32Const(3)), bs(0), vec(u(f(1)))),
			cat(u(3), bs(0), vec(u(f(2)))),
			cat(u(4), constExpr(i32Const(4)), vec(constExpr(refFunc(f(1))), constExpr(bs(opRefNull, typeFuncref)))),
			cat(u(5), funcref, vec(constExpr(refFunc(f(2))))),
			cat(u(6), u(0), constExpr(i32Const(6)), funcref, vec(constExpr(refFunc(f(0))), constExpr(refFunc(f(2))))),
			cat(u(7), funcref, vec(constExpr(refFunc(f(1))))),
		))
	}
	same := func(i uint32) uint32 { return i }
	shifted := func(i uint32) uint32 {
		if i >= 1 {
			return i + 1
		}
		return i
	}
	table := sec(idTable, vec(cat(bs(typeFuncref, 0), u(8))))
	add(instrumentCase{
		name: "element segments of all eight kinds",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0))),
			sec(idFunction, vec(u(0), u(0))),
			table,
			elems(same),
			sec(idCode, vec(code(end), code(end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0), yieldImport(0))),
			sec(idFunction, vec(u(0), u(0))),
			table,
			sec(idGlobal, vec(guardGlobal)),
			elems(shifted),
			sec(idCode, vec(code(end), code(end))),
		),
	})

	funcrefGlobal := func(f uint32) []byte { return cat(bs(typeFuncref, 0), constExpr(refFunc(f))) }
	add(instrumentCase{
		name: "globals initialised with ref.func, ref.func in code",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0))),
			sec(idFunction, vec(u(0))),
			sec(idGlobal, vec(funcrefGlobal(1), funcrefGlobal(0))),
			sec(idCode, vec(code(refFunc(1), bs(opDrop), refFunc(0), bs(opDrop), end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0), yieldImport(0))),
			sec(idFunction, vec(u(0))),
			sec(idGlobal, vec(funcrefGlobal(2), funcrefGlobal(0), guardGlobal)),
			sec(idCode, vec(code(refFunc(2), bs(opDrop), refFunc(0), bs(opDrop), end))),
		),
	})

	names := func(f func(uint32) uint32, unknown bool) []byte {
		subs := [][]byte{
			subsec(nameModule, str("m")),
			subsec(nameFunctions, vec(cat(u(f(0)), str("imp")), cat(u(f(1)), str("a")), cat(u(f(2)), str("b")))),
			subsec(nameLocals, vec(cat(u(f(1)), vec(cat(u(0), str("x")))), cat(u(f(2)), vec()))),
			subsec(nameLabels, vec(cat(u(f(2)), vec(cat(u(0), str("l")))))),
			subsec(4, vec(cat(u(0), str("t")))), // type names
		}
		if unknown {
			subs = append(subs, subsec(200, bs(1, 2, 3)))
		}
		return sec(idCustom, str("name"), cat(subs...))
	}
	add(instrumentCase{
		name: "name section renumbered, unknown subsection dropped",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0))),
			sec(idFunction, vec(u(0), u(0))),
			sec(idCode, vec(code(end), code(end))),
			names(same, true),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(importFunc("env", "imp", 0), yieldImport(0))),
			sec(idFunction, vec(u(0), u(0))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idCode, vec(code(end), code(end))),
			names(shifted, false),
		),
	})

	memImport := cat(str("env"), str("mem"), bs(kindMemory, 0, 1))
	add(instrumentCase{
		name: "imports only a memory and a global",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(memImport, importGlobal("env", "g"))),
			sec(idFunction, vec(u(0))),
			sec(idExport, vec(export("f", kindFunc, 0))),
			sec(idCode, vec(code(loop, end, end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(memImport, importGlobal("env", "g"), yieldImport(0))), // yield is function 0
			sec(idFunction, vec(u(0))),
			sec(idGlobal, vec(guardGlobal)), // global 1, after the imported one
			sec(idExport, vec(export("f", kindFunc, 1))),
			sec(idCode, vec(code(loop, guard(1, 0), end, end))),
		),
	})

	add(instrumentCase{
		name: "empty module",
		in:   mod(),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idGlobal, vec(guardGlobal)),
		),
	})

	producers := sec(idCustom, str("producers"), bs(1, 2, 3))
	trailer := sec(idCustom, str("z"), bs(9))
	data := sec(idData, vec(
		cat(u(0), constExpr(i32Const(16)), str("hi")),
		cat(u(1), str("passive")),
		cat(u(2), u(0), constExpr(i32Const(32)), str("x")),
	))
	add(instrumentCase{
		name: "custom sections, memory, data count and data kept",
		in: mod(
			producers,
			sec(idType, vec(tVoid)),
			sec(idFunction, vec(u(0))),
			sec(idMemory, vec(bs(0, 1))),
			sec(idDataCount, u(3)),
			sec(idCode, vec(code(loop, end, end))),
			data,
			trailer,
		),
		want: mod(
			producers,
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idFunction, vec(u(0))),
			sec(idMemory, vec(bs(0, 1))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idDataCount, u(3)),
			sec(idCode, vec(code(loop, guard(0, 0), end, end))),
			data,
			trailer,
		),
	})

	add(instrumentCase{
		name: "() -> () inside a rec group is not reused",
		in:   mod(sec(idType, vec(cat(bs(0x4e), vec(tVoid))))),
		want: mod(
			sec(idType, vec(cat(bs(0x4e), vec(tVoid)), tVoid)),
			sec(idImport, vec(yieldImport(1))),
			sec(idGlobal, vec(guardGlobal)),
		),
	})

	// 128 functions: index 127 takes one LEB128 byte, 128 two.
	funcs, bodies, want := [][]byte{}, [][]byte{code(call(127), end)}, [][]byte{code(call(128), end)}
	for i := 0; i < 128; i++ {
		funcs = append(funcs, u(0))
		if i > 0 {
			bodies, want = append(bodies, code(end)), append(want, code(end))
		}
	}
	loops, guarded := []byte{}, []byte{}
	for range 7 { // body grows past 127 bytes: its size takes two bytes
		loops, guarded = cat(loops, loop, end), cat(guarded, loop, guard(0, 0), end)
	}
	bodies[1], want[1] = code(loops, end), code(guarded, end)
	add(instrumentCase{
		name: "indices and body sizes that need a longer LEB128",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idFunction, vec(funcs...)),
			sec(idCode, vec(bodies...)),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idFunction, vec(funcs...)),
			sec(idGlobal, vec(guardGlobal)),
			sec(idCode, vec(want...)),
		),
	})

	add(instrumentCase{
		name: "table with an initialiser",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idFunction, vec(u(0))),
			sec(idTable, vec(cat(bs(0x40, 0, typeFuncref, 0), u(1), constExpr(refFunc(0))))),
			sec(idCode, vec(code(end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idFunction, vec(u(0))),
			sec(idTable, vec(cat(bs(0x40, 0, typeFuncref, 0), u(1), constExpr(refFunc(1))))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idCode, vec(code(end))),
		),
		features: features | experimental.CoreFeaturesTypedFunctionReferences,
	})
	tryTable := bs(opTryTable, blockEmpty, 1, catchAll, 0) // catch_all: to the function's end
	add(instrumentCase{
		name: "exception handling: tag section, try_table, throw",
		in: mod(
			sec(idType, vec(tVoid)),
			sec(idFunction, vec(u(0))),
			sec(idTag, vec(bs(0, 0))), // attribute, type 0
			sec(idCode, vec(code(tryTable, loop, end, bs(opThrow, 0), end, end))),
		),
		want: mod(
			sec(idType, vec(tVoid)),
			sec(idImport, vec(yieldImport(0))),
			sec(idFunction, vec(u(0))),
			sec(idTag, vec(bs(0, 0))),
			sec(idGlobal, vec(guardGlobal)),
			sec(idCode, vec(code(tryTable, loop, guard(0, 0), end, bs(opThrow, 0), end, end))),
		),
		features: features | experimental.CoreFeaturesExceptionHandling,
	})
	return cases
}

// features are those the hand-written modules use.
var features = api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall

// compile compiles wasm with wazero, as a check that the hand-written
// modules are what they mean to be.
func compile(t testing.TB, wasm []byte, with api.CoreFeatures) (wazero.CompiledModule, error) {
	t.Helper()
	if with == 0 {
		with = features
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(with))
	t.Cleanup(func() { _ = r.Close(ctx) })
	return r.CompileModule(ctx, wasm)
}

func TestInstrument(t *testing.T) {
	for _, tc := range instrumentCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Instrument(tc.in)
			if err != nil {
				t.Fatalf("Instrument: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("rewrite differs\n got: %s\nwant: %s", hex.EncodeToString(got), hex.EncodeToString(tc.want))
			}
			if _, err := Instrument(got); !errors.Is(err, errAlreadyInstrumented) {
				t.Errorf("instrumenting twice: err %v, want %v", err, errAlreadyInstrumented)
			}
			for _, m := range []struct {
				what string
				wasm []byte
			}{{"input", tc.in}, {"output", got}} {
				if _, err := compile(t, m.wasm, tc.features); err != nil {
					t.Errorf("wazero rejects the %s: %v", m.what, err)
				}
			}
		})
	}
}

func TestInstrumentDoesNotModifyInput(t *testing.T) {
	for _, tc := range instrumentCases() {
		in := bytes.Clone(tc.in)
		out, err := Instrument(in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(in, tc.in) {
			t.Errorf("%s: the input changed", tc.name)
		}
		// The output must not alias the input.
		for i := range out {
			out[i] = 0xff
		}
		if !bytes.Equal(in, tc.in) {
			t.Errorf("%s: the output aliases the input", tc.name)
		}
	}
}

// oneFunc is a module with one function () -> () whose body (locals
// included) is the given bytes.
func oneFunc(body ...[]byte) []byte {
	b := cat(body...)
	return mod(sec(idType, vec(tVoid)), sec(idFunction, vec(u(0))), sec(idCode, vec(cat(u(uint32(len(b))), b))))
}

func TestInstrumentErrors(t *testing.T) {
	noLocals := bs(0)
	tests := []struct {
		name string
		in   []byte
		want string // in the error
	}{
		{"yield already imported", mod(sec(idType, vec(tVoid)), sec(idImport, vec(yieldImport(0)))), "already instrumented"},
		{"yield name imported as a global", mod(sec(idImport, vec(importGlobal(ImportModule, ImportName)))), "already instrumented"},
		{"empty input", nil, "bad magic"},
		{"text", []byte("(module)"), "bad magic"},
		{"truncated header", bs(0, 'a', 's', 'm', 1), "version"},
		{"version 2", bs(0, 'a', 's', 'm', 2, 0, 0, 0), "version"},
		{"component", bs(0, 'a', 's', 'm', 0x0d, 0, 1, 0), "version"},
		{"unknown section", mod(sec(14)), "unknown section id 14"},
		{"sections out of order", mod(sec(idFunction, vec()), sec(idType, vec())), "type section at offset 0xb is out of order"},
		{"section repeated", mod(sec(idType, vec()), sec(idType, vec())), "out of order or repeated"},
		{"section longer than the input", mod(bs(idType, 10, 0)), "unexpected end"},
		{"section size overlong", mod(bs(idType, 0x80, 0x80, 0x80, 0x80, 0x80, 0)), "u32 LEB128 overflows"},
		{"trailing bytes in a section", mod(sec(idType, vec(tVoid)), sec(idFunction, vec(u(0), u(0))), sec(idStart, u(0), u(1))), "does not match the section size"},
		{"unknown type form", mod(sec(idType, vec(bs(0x5f, 0, 0)))), "unknown form 0x5f"},
		{"unknown value type", mod(sec(idType, vec(functype(bs(0x7a), none)))), "unknown value type 0x7a"},
		{"unknown import kind", mod(sec(idImport, vec(cat(str("a"), str("b"), bs(5))))), "unknown import kind 0x5"},
		{"table initialiser in an import", mod(sec(idImport, vec(cat(str("a"), str("b"), bs(kindTable, 0x40, 0, typeFuncref, 0, 1))))), "unknown reference type 0x40"},
		{"unknown import limits", mod(sec(idImport, vec(cat(str("a"), str("b"), bs(kindMemory, 4, 1))))), "unknown limits flags 0x4"},
		{"unknown export kind", mod(sec(idExport, vec(cat(str("a"), bs(5, 0))))), "unknown export kind 0x5"},
		{"nop in a constant expression", mod(sec(idGlobal, vec(cat(bs(typeI32, 0), bs(opNop), constExpr(i32Const(1)))))), "instruction 0x1 in a constant expression"},
		{"SIMD other than v128.const in a constant expression", mod(sec(idGlobal, vec(cat(bs(typeV128, 0, prefixSIMD, 0x0f), end)))), "0xfd 0xf in a constant expression"},
		{"unknown element segment kind", mod(sec(idElement, vec(cat(u(8))))), "unknown element segment kind 8"},
		{"unknown data segment kind", mod(sec(idData, vec(cat(u(3))))), "unknown data segment kind 3"},
		{"malformed name section", mod(sec(idCustom, str("name"), bs(nameFunctions, 5, 1, 0))), "malformed name section"},
		{"malformed custom section name", mod(sec(idCustom, bs(5, 'a'))), "unexpected end"},
		{"unknown local type", oneFunc(vec(cat(u(1), bs(0x7a))), end), "locals: unknown value type"},
		{"unknown opcode", oneFunc(noLocals, bs(0x27), end), "unknown opcode 0x27"},
		{"unknown opcode 0xff", oneFunc(noLocals, bs(0xff), end), "unknown opcode 0xff"},
		{"GC prefix", oneFunc(noLocals, bs(0xfb, 0), end), "unknown opcode 0xfb"},
		{"legacy try", oneFunc(noLocals, bs(opLegacyTry, blockEmpty), end, end), "legacy exception-handling instruction 0x6"},
		{"legacy delegate", oneFunc(noLocals, bs(opLegacyDelegate, 0), end), "legacy exception-handling instruction 0x18"},
		{"unknown 0xFC opcode", oneFunc(noLocals, bs(prefixMisc, 18), end), "unknown opcode 0xfc 18"},
		{"unassigned SIMD opcode", oneFunc(noLocals, bs(prefixSIMD, 0x9a, 0x01), end), "unknown opcode 0xfd 0x9a"},
		{"relaxed SIMD opcode", oneFunc(noLocals, bs(prefixSIMD, 0x80, 0x02), end), "unknown opcode 0xfd 0x100"},
		{"unknown atomic opcode", oneFunc(noLocals, bs(prefixAtomic, 0x04), end), "unknown opcode 0xfe 0x4"},
		{"SIMD opcode in a longer encoding", oneFunc(noLocals, bs(prefixSIMD, 0x8c, 0x00), rep(0, 16), end), "opcode 0xfd 0xc: not in its shortest encoding"},
		{"atomic opcode in a longer encoding", oneFunc(noLocals, bs(prefixAtomic, 0x83, 0x00, 0x00), end), "opcode 0xfe 0x3: not in its shortest encoding"},
		{"atomic.fence with a non-zero byte", oneFunc(noLocals, bs(prefixAtomic, 0x03, 1), end), "atomic.fence: byte 0x1"},
		{"memory.grow of memory 1", oneFunc(noLocals, bs(opMemoryGrow, 1), end), "memory index: byte 0x1"},
		{"memarg with a memory index", oneFunc(noLocals, bs(opI32Load, 0x40, 0), end), "memarg alignment 64"},
		{"unknown block type", oneFunc(noLocals, bs(opLoop, 0x41), end, end), "unknown block type -63"},
		{"unknown heap type", oneFunc(noLocals, bs(opRefNull, 0x6e), end), "unknown heap type -18"},
		{"unknown catch kind", oneFunc(noLocals, bs(opTryTable, blockEmpty, 1, 4, 0), end, end), "unknown catch kind 0x4"},
		{"i32.const too long", oneFunc(noLocals, bs(opI32Const, 0x80, 0x80, 0x80, 0x80, 0x80, 0), end), "s32 LEB128 longer than 5 bytes"},
		{"i32.const overflowing", oneFunc(noLocals, bs(opI32Const, 0xff, 0xff, 0xff, 0xff, 0x0f), end), "s32 LEB128 overflows"},
		{"i64.const overflowing", oneFunc(noLocals, bs(opI64Const, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02), end), "s64 LEB128 overflows"},
		{"function index overflowing", oneFunc(noLocals, bs(opCall, 0xff, 0xff, 0xff, 0xff, 0x1f), end), "u32 LEB128 overflows"},
		{"function index too large", oneFunc(noLocals, bs(opCall, 0xff, 0xff, 0xff, 0xff, 0x0f), end), "function index overflows"},
		{"bytes after the function's end", oneFunc(noLocals, end, bs(opNop)), "offset 0x2: 1 trailing bytes after the function's end"},
		{"body without its end", oneFunc(noLocals, loop, end), "ends before the end of the function"},
		{"body cut inside an instruction", oneFunc(noLocals, bs(opI32Const)), "function 0: offset 0x1: unexpected end"},
		{"function size beyond the section", mod(sec(idType, vec(tVoid)), sec(idFunction, vec(u(0))), sec(idCode, vec(bs(9, 0, opEnd)))), "function 0: unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Instrument(tt.in)
			if err == nil {
				t.Fatalf("no error; output %x", out)
			}
			if out != nil {
				t.Errorf("output %x with the error", out)
			}
			if !strings.HasPrefix(err.Error(), "loopguard: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestInstrumentTruncated cuts every valid test module at every length:
// anything but a section boundary is an error, and nothing panics.
func TestInstrumentTruncated(t *testing.T) {
	for _, tc := range instrumentCases() {
		sections, err := split(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		boundaries := map[int]bool{len(header): true}
		for _, s := range sections {
			boundaries[s.offset+len(s.body)] = true
		}
		for n := range len(tc.in) {
			_, err := Instrument(tc.in[:n])
			if !boundaries[n] && err == nil {
				t.Errorf("%s cut to %d bytes: no error", tc.name, n)
			}
		}
	}
}

// TestInstrumentCorrupted flips every bit of every valid test module: the
// result is an error or an instrumented module, never a panic.
func TestInstrumentCorrupted(t *testing.T) {
	for _, tc := range instrumentCases() {
		in := bytes.Clone(tc.in)
		for i := range in {
			for bit := range 8 {
				in[i] ^= 1 << bit
				if out, err := Instrument(in); err == nil {
					if _, err := Instrument(out); !errors.Is(err, errAlreadyInstrumented) {
						t.Errorf("%s with byte %d bit %d flipped: instrumenting the output again: %v", tc.name, i, bit, err)
					}
				}
				in[i] ^= 1 << bit
			}
		}
	}
}
