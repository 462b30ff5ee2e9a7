package loopguard

import "fmt"

// External kinds of imports and exports.
const (
	kindFunc   = 0x00
	kindTable  = 0x01
	kindMemory = 0x02
	kindGlobal = 0x03
	kindTag    = 0x04
)

// scanImports counts imported functions and globals and rejects a module
// that already imports the yield function.
func (w *rewriter) scanImports(body []byte) error {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if err := w.scanImport(r); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
	}
	if r.len() != 0 {
		return errSectionSize
	}
	return nil
}

func (w *rewriter) scanImport(r *reader) error {
	module, err := r.name()
	if err != nil {
		return err
	}
	name, err := r.name()
	if err != nil {
		return err
	}
	if string(module) == ImportModule && string(name) == ImportName {
		return errAlreadyInstrumented
	}
	kind, err := r.readByte()
	if err != nil {
		return err
	}
	switch kind {
	case kindFunc:
		w.funcImports++
		var t uint32
		t, err = r.u32()
		w.importTypes = append(w.importTypes, t)
	case kindTable:
		// The table-section form with an initialiser (0x40 0x00) is not
		// an import's table type.
		if err = r.refType(); err == nil {
			err = r.limits()
		}
	case kindMemory:
		err = r.limits()
	case kindGlobal:
		w.globalImports++
		err = r.globalType()
	case kindTag:
		if err = r.expectByte(0, "tag attribute"); err == nil {
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("unknown import kind %#x", kind)
	}
	return err
}

// importSection appends the yield import after the existing imports.
func (w *rewriter) importSection(body []byte) []byte {
	return w.appendYieldImport(recount(body, 1))
}

func (w *rewriter) appendYieldImport(out []byte) []byte {
	out = appendU32(out, uint32(len(ImportModule)))
	out = append(out, ImportModule...)
	out = appendU32(out, uint32(len(ImportName)))
	out = append(out, ImportName...)
	out = append(out, kindFunc)
	return appendU32(out, w.yieldType)
}

// appendGuardGlobal appends the budget global: (mut i32) (i32.const Budget).
func appendGuardGlobal(out []byte) []byte {
	out = append(out, typeI32, 1, opI32Const)
	out = appendS32(out, Budget)
	return append(out, opEnd)
}

// vector rewrites a section (or subsection) that is a vector of entries,
// each copied by entry, and checks that the entries fill it. what names an
// entry in errors.
func vector(body []byte, extra int, what string, entry func(r *reader, out []byte) ([]byte, error)) ([]byte, error) {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(body)+extra), n)
	for i := uint32(0); i < n; i++ {
		if out, err = entry(r, out); err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, i, err)
		}
	}
	if r.len() != 0 {
		return nil, errSectionSize
	}
	return out, nil
}

// copySince appends what r read since start.
func copySince(r *reader, start int, out []byte) []byte {
	return append(out, r.buf[start:r.pos]...)
}

func (w *rewriter) tableSection(body []byte) ([]byte, error) {
	return vector(body, 0, "table", func(r *reader, out []byte) ([]byte, error) {
		start := r.pos
		withInit := r.pos < len(r.buf) && r.buf[r.pos] == 0x40
		if withInit {
			r.pos++
			if err := r.expectByte(0, "table with initialiser"); err != nil {
				return nil, err
			}
		}
		if err := r.refType(); err != nil {
			return nil, err
		}
		if err := r.limits(); err != nil {
			return nil, err
		}
		out = copySince(r, start, out)
		if withInit {
			return w.constExpr(r, out)
		}
		return out, nil
	})
}

func (w *rewriter) globalSection(body []byte) ([]byte, error) {
	out, err := vector(body, 8, "global", func(r *reader, out []byte) ([]byte, error) {
		start := r.pos
		if err := r.globalType(); err != nil {
			return nil, err
		}
		return w.constExpr(r, copySince(r, start, out))
	})
	if err != nil {
		return nil, err
	}
	return appendGuardGlobal(recount(out, 1)), nil // one more global, appended
}

func (w *rewriter) exportSection(body []byte) ([]byte, error) {
	return vector(body, 16, "export", func(r *reader, out []byte) ([]byte, error) {
		start := r.pos
		if _, err := r.name(); err != nil {
			return nil, err
		}
		kind, err := r.readByte()
		if err != nil {
			return nil, err
		}
		out = copySince(r, start, out)
		switch kind {
		case kindFunc:
			return w.funcIndex(r, out)
		case kindTable, kindMemory, kindGlobal, kindTag:
			start = r.pos
			if _, err := r.u32(); err != nil {
				return nil, err
			}
			return copySince(r, start, out), nil
		}
		return nil, fmt.Errorf("unknown export kind %#x", kind)
	})
}

func (w *rewriter) startSection(body []byte) ([]byte, error) {
	r := &reader{buf: body}
	out, err := w.funcIndex(r, nil)
	if err != nil {
		return nil, err
	}
	if r.len() != 0 {
		return nil, errSectionSize
	}
	return out, nil
}

// elementSection renumbers the function indices of all eight kinds of
// element segment. The kind's bits: 1 passive or declarative, 2 explicit
// table index (active) or declarative (passive), 4 expressions instead of
// function indices.
func (w *rewriter) elementSection(body []byte) ([]byte, error) {
	return vector(body, 16, "segment", func(r *reader, out []byte) ([]byte, error) {
		start := r.pos
		kind, err := r.u32()
		if err != nil {
			return nil, err
		}
		if kind > 7 {
			return nil, fmt.Errorf("unknown element segment kind %d", kind)
		}
		out = copySince(r, start, out)
		active := kind&1 == 0
		if active {
			if kind&2 != 0 {
				start = r.pos
				if _, err := r.u32(); err != nil { // table index
					return nil, err
				}
				out = copySince(r, start, out)
			}
			if out, err = w.constExpr(r, out); err != nil {
				return nil, fmt.Errorf("offset: %w", err)
			}
		}
		// Kinds 0 and 4 have neither element kind nor type: funcref.
		if kind != 0 && kind != 4 {
			start = r.pos
			if kind&4 == 0 {
				err = r.expectByte(0, "element kind") // funcref
			} else {
				err = r.refType()
			}
			if err != nil {
				return nil, err
			}
			out = copySince(r, start, out)
		}
		start = r.pos
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = copySince(r, start, out)
		for i := uint32(0); i < n; i++ {
			if kind&4 == 0 {
				out, err = w.funcIndex(r, out)
			} else {
				out, err = w.constExpr(r, out)
			}
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
		}
		return out, nil
	})
}

func (w *rewriter) dataSection(body []byte) ([]byte, error) {
	return vector(body, 0, "segment", func(r *reader, out []byte) ([]byte, error) {
		start := r.pos
		kind, err := r.u32()
		if err != nil {
			return nil, err
		}
		switch kind {
		case 0: // active, memory 0
		case 1: // passive
		case 2: // active, explicit memory index
			if _, err := r.u32(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown data segment kind %d", kind)
		}
		out = copySince(r, start, out)
		if kind != 1 {
			if out, err = w.constExpr(r, out); err != nil {
				return nil, fmt.Errorf("offset: %w", err)
			}
		}
		start = r.pos
		if _, err := r.name(); err != nil { // the bytes
			return nil, err
		}
		return copySince(r, start, out), nil
	})
}

// constExpr copies a constant expression, renumbering ref.func. It knows
// the instructions wazero v1.12.0 allows there (with extended-const).
func (w *rewriter) constExpr(r *reader, out []byte) ([]byte, error) {
	for {
		start := r.pos
		op, err := r.readByte()
		if err != nil {
			return nil, err
		}
		switch op {
		case opEnd:
			return append(out, op), nil
		case opRefFunc:
			if out, err = w.funcIndex(r, append(out, op)); err != nil {
				return nil, err
			}
			continue
		case opI32Const:
			_, err = r.signed(32)
		case opI64Const:
			_, err = r.signed(64)
		case opF32Const:
			_, err = r.take(4)
		case opF64Const:
			_, err = r.take(8)
		case opGlobalGet:
			_, err = r.u32()
		case opRefNull:
			err = r.heapType()
		case opI32Add, opI32Sub, opI32Mul, opI64Add, opI64Sub, opI64Mul:
		case prefixSIMD:
			var sub uint32
			if sub, err = r.u32(); err == nil {
				if sub != simdV128Const {
					return nil, fmt.Errorf("instruction 0xfd %#x in a constant expression", sub)
				}
				_, err = r.take(16)
			}
		default:
			return nil, fmt.Errorf("instruction %#x in a constant expression", op)
		}
		if err != nil {
			return nil, err
		}
		out = copySince(r, start, out)
	}
}
