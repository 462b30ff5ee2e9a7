package loopguard

import (
	"errors"
	"fmt"
	"math"
)

// codeSection rewrites every function body.
func (w *rewriter) codeSection(body []byte) ([]byte, error) {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+len(body)/16), n)
	for i := uint32(0); i < n; i++ {
		fn := uint64(w.funcImports) + uint64(i) // index before the rewrite
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("function %d: size: %w", fn, err)
		}
		code, err := r.take(size)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", fn, err)
		}
		if w.scratch, err = w.body(code, w.scratch[:0]); err != nil {
			return nil, fmt.Errorf("function %d: %w", fn, err)
		}
		if uint64(len(w.scratch)) > math.MaxUint32 {
			return nil, fmt.Errorf("function %d: body too large", fn)
		}
		out = appendU32(out, uint32(len(w.scratch)))
		out = append(out, w.scratch...)
	}
	if r.len() != 0 {
		return nil, errSectionSize
	}
	return out, nil
}

// body copies one function body (locals, then instructions) and inserts
// the guard after every loop's block type.
func (w *rewriter) body(code []byte, out []byte) ([]byte, error) {
	r := &reader{buf: code}
	groups, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("locals: %w", err)
	}
	for range groups {
		if _, err := r.u32(); err != nil {
			return nil, fmt.Errorf("locals: %w", err)
		}
		if err := r.valType(); err != nil {
			return nil, fmt.Errorf("locals: %w", err)
		}
	}
	copied := 0 // code[:copied] is in out
	depth := 0  // open blocks
	for {
		start := r.pos
		op, err := r.readByte()
		if err != nil {
			return nil, errors.New("the body ends before the end of the function")
		}
		switch op {
		case opEnd:
			if depth == 0 {
				if r.len() != 0 {
					return nil, fmt.Errorf("offset %#x: %d trailing bytes after the function's end", r.pos, r.len())
				}
				return append(out, code[copied:]...), nil
			}
			depth--
		case opLoop:
			if err = r.blockType(); err == nil {
				depth++
				out = append(out, code[copied:r.pos]...)
				out = append(out, w.guard...)
				copied = r.pos
			}
		case opCall, opReturnCall, opRefFunc:
			out = append(out, code[copied:r.pos]...)
			out, err = w.funcIndex(r, out)
			copied = r.pos
		case opBlock, opIf:
			if err = r.blockType(); err == nil {
				depth++
			}
		case opTryTable:
			if err = r.tryTable(); err == nil {
				depth++
			}
		default:
			err = r.skipInstruction(op)
		}
		if err != nil {
			return nil, fmt.Errorf("offset %#x: %w", start, err)
		}
	}
}

// tryTable reads try_table's block type and catch clauses.
func (r *reader) tryTable() error {
	if err := r.blockType(); err != nil {
		return err
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		kind, err := r.readByte()
		if err != nil {
			return err
		}
		switch kind {
		case catchTag, catchTagRef:
			if _, err := r.u32(); err != nil { // tag index
				return err
			}
		case catchAll, catchAllRef:
		default:
			return fmt.Errorf("try_table: unknown catch kind %#x", kind)
		}
		if _, err := r.u32(); err != nil { // label index
			return err
		}
	}
	return nil
}

// skipInstruction reads the immediates of every instruction that needs no
// rewrite and is neither a block start nor end.
func (r *reader) skipInstruction(op byte) error {
	var err error
	switch {
	case op >= opI32Eqz && op <= opI64Extend32S: // numeric, incl. sign extension
		return nil
	case op >= opI32Load && op <= opI64Store32:
		return r.memarg()
	}
	switch op {
	case opUnreachable, opNop, opElse, opThrowRef, opReturn, opDrop, opSelect,
		opRefIsNull, opRefAsNonNull:
		return nil
	case opThrow, opBr, opBrIf, opCallRef, opReturnCallRef,
		opLocalGet, opLocalSet, opLocalTee, opGlobalGet, opGlobalSet,
		opTableGet, opTableSet, opBrOnNull, opBrOnNonNull:
		_, err = r.u32()
	case opCallIndirect, opReturnCallIndirect: // type index, table index
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case opBrTable:
		var n uint32
		if n, err = r.u32(); err != nil {
			return err
		}
		for i := uint64(0); i <= uint64(n) && err == nil; i++ { // labels and default
			_, err = r.u32()
		}
	case opSelectTyped:
		var n uint32
		if n, err = r.u32(); err != nil {
			return err
		}
		for i := uint32(0); i < n && err == nil; i++ {
			err = r.valType()
		}
	case opMemorySize, opMemoryGrow:
		err = r.expectByte(0, "memory index")
	case opI32Const:
		_, err = r.signed(32)
	case opI64Const:
		_, err = r.signed(64)
	case opF32Const:
		_, err = r.take(4)
	case opF64Const:
		_, err = r.take(8)
	case opRefNull:
		err = r.heapType()
	case prefixMisc:
		err = r.misc()
	case prefixSIMD:
		err = r.simd()
	case prefixAtomic:
		err = r.atomic()
	case opLegacyTry, opLegacyCatch, opLegacyRethrow, opLegacyDelegate, opLegacyCatchAll:
		return fmt.Errorf("legacy exception-handling instruction %#x (wazero rejects it)", op)
	default:
		return fmt.Errorf("unknown opcode %#x", op)
	}
	return err
}

// memarg reads alignment and offset. Multi-memory (bit 6 of the
// alignment) is not decoded by wazero v1.12.0.
func (r *reader) memarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align >= 32 {
		return fmt.Errorf("memarg alignment %d", align)
	}
	_, err = r.u32()
	return err
}

// misc reads an instruction of the 0xFC prefix.
func (r *reader) misc() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= miscI64TruncSatF64U:
		return nil
	case sub == miscMemoryInit: // data index, memory 0
		if _, err = r.u32(); err == nil {
			err = r.expectByte(0, "memory.init memory index")
		}
	case sub == miscDataDrop, sub == miscElemDrop, // segment index
		sub >= miscTableGrow && sub <= miscTableFill: // table index
		_, err = r.u32()
	case sub == miscMemoryCopy:
		if err = r.expectByte(0, "memory.copy memory index"); err == nil {
			err = r.expectByte(0, "memory.copy memory index")
		}
	case sub == miscMemoryFill:
		err = r.expectByte(0, "memory.fill memory index")
	case sub == miscTableInit, sub == miscTableCopy: // two indices
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	default:
		return fmt.Errorf("unknown opcode 0xfc %d", sub)
	}
	return err
}

// oneByteOpcode reads the opcode after the 0xFD or 0xFE prefix. The spec
// encodes it as a u32; wazero v1.12.0 reads one byte. They agree on the
// shortest encoding only (for SIMD opcodes from 0x80, encoded 0x80|op, 0x01,
// wazero reads the op and then 0x01 as a nop, and no such opcode has
// immediates), so any other encoding is an error.
func (r *reader) oneByteOpcode(prefix byte) (uint32, error) {
	start := r.pos
	sub, err := r.u32()
	if err != nil {
		return 0, err
	}
	if len(appendU32(nil, sub)) != r.pos-start {
		return 0, fmt.Errorf("opcode %#x %#x: not in its shortest encoding", prefix, sub)
	}
	return sub, nil
}

// simd reads an instruction of the 0xFD prefix.
func (r *reader) simd() error {
	sub, err := r.oneByteOpcode(prefixSIMD)
	if err != nil {
		return err
	}
	if sub >= uint32(len(simdImmediates)) || simdImmediates[sub] == simdUnknown {
		return fmt.Errorf("unknown opcode 0xfd %#x", sub)
	}
	switch simdImmediates[sub] {
	case simdMemarg:
		err = r.memarg()
	case simdMemargLane:
		if err = r.memarg(); err == nil {
			_, err = r.readByte()
		}
	case simdLane:
		_, err = r.readByte()
	case simdBytes16:
		_, err = r.take(16)
	}
	return err
}

// atomic reads an instruction of the 0xFE prefix.
func (r *reader) atomic() error {
	sub, err := r.oneByteOpcode(prefixAtomic)
	if err != nil {
		return err
	}
	switch {
	case sub == atomicFence:
		return r.expectByte(0, "atomic.fence")
	case sub <= atomicWait64, sub >= atomicFirstAccess && sub <= atomicLastAccess:
		return r.memarg()
	}
	return fmt.Errorf("unknown opcode 0xfe %#x", sub)
}
