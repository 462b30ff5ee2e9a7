package loopguard

import "fmt"

// Value type encodings wazero v1.12.0 decodes.
const (
	typeI32       = 0x7f
	typeI64       = 0x7e
	typeF32       = 0x7d
	typeF64       = 0x7c
	typeV128      = 0x7b
	typeFuncref   = 0x70
	typeExternref = 0x6f
	typeExnref    = 0x69
	refNullable   = 0x63 // ref null <heaptype>
	refNonNull    = 0x64 // ref <heaptype>
)

// Abstract heap types, as s33 values.
const (
	heapFunc   = -16
	heapExtern = -17
	heapExn    = -23
)

// valType reads a value type.
func (r *reader) valType() error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	switch b {
	case typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref, typeExnref:
		return nil
	case refNullable, refNonNull:
		return r.heapType()
	}
	return fmt.Errorf("unknown value type %#x", b)
}

// refType reads a reference type (table and element segment types).
func (r *reader) refType() error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	switch b {
	case typeFuncref, typeExternref, typeExnref:
		return nil
	case refNullable, refNonNull:
		return r.heapType()
	}
	return fmt.Errorf("unknown reference type %#x", b)
}

// heapType reads a heap type: an abstract one or a type index (s33).
func (r *reader) heapType() error {
	v, err := r.signed(33)
	if err != nil {
		return err
	}
	switch {
	case v >= 0, v == heapFunc, v == heapExtern, v == heapExn:
		return nil
	}
	return fmt.Errorf("unknown heap type %d", v)
}

// blockType reads the block type of block, loop, if and try_table.
func (r *reader) blockType() error {
	if r.pos < len(r.buf) && (r.buf[r.pos] == refNullable || r.buf[r.pos] == refNonNull) {
		r.pos++
		return r.heapType()
	}
	v, err := r.signed(33)
	if err != nil {
		return err
	}
	if v >= 0 { // type index
		return nil
	}
	// 0x40 (empty) or a value type: one byte, read as a negative s33.
	if v >= -64 {
		switch byte(v + 0x80) {
		case blockEmpty, typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref, typeExnref:
			return nil
		}
	}
	return fmt.Errorf("unknown block type %d", v)
}

// limits reads the limits of a table or memory type.
func (r *reader) limits() error {
	flags, err := r.readByte()
	if err != nil {
		return err
	}
	if flags > 3 { // bit 0: has maximum, bit 1: shared
		return fmt.Errorf("unknown limits flags %#x", flags)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

// globalType reads a global's value type and mutability.
func (r *reader) globalType() error {
	if err := r.valType(); err != nil {
		return err
	}
	mut, err := r.readByte()
	if err != nil {
		return err
	}
	if mut > 1 {
		return fmt.Errorf("unknown global mutability %#x", mut)
	}
	return nil
}

// scanTypes counts the types, records their signatures and finds a
// standalone () -> () type.
func (w *rewriter) scanTypes(body []byte) error {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		form, err := r.readByte()
		if err != nil {
			return err
		}
		switch form {
		case 0x60:
			s, err := r.readSig()
			if err != nil {
				return fmt.Errorf("type %d: %w", w.types, err)
			}
			if s.params == 0 && s.results == 0 && w.voidType < 0 {
				w.voidType = int64(w.types)
			}
			w.sigs = append(w.sigs, s)
			w.types++
		case 0x4e: // rec group of function types
			members, err := r.u32()
			if err != nil {
				return err
			}
			for range members {
				if err := r.expectByte(0x60, fmt.Sprintf("type %d", w.types)); err != nil {
					return err
				}
				s, err := r.readSig()
				if err != nil {
					return fmt.Errorf("type %d: %w", w.types, err)
				}
				w.sigs = append(w.sigs, s)
				w.types++
			}
		default:
			return fmt.Errorf("type %d: unknown form %#x", w.types, form)
		}
	}
	if r.len() != 0 {
		return errSectionSize
	}
	return nil
}

// typeSection appends () -> () unless the module has it, and the
// dispatcher's type when there is a dispatcher.
func (w *rewriter) typeSection(body []byte) []byte {
	var extra uint32
	var tail []byte
	if w.voidType < 0 {
		extra++
		tail = append(tail, 0x60, 0, 0)
	}
	if len(w.cases) > 0 {
		extra++
		tail = appendDispatchType(tail)
	}
	if extra == 0 {
		return body
	}
	return append(recount(body, extra), tail...)
}
