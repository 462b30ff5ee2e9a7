package loopguard

import "fmt"

// Subsections of the name section (extended name section proposal).
const (
	nameModule    = 0
	nameFunctions = 1 // function index -> name
	nameLocals    = 2 // function index -> local index -> name
	nameLabels    = 3 // function index -> label index -> name
	nameLastKnown = 11
)

// custom copies a custom section, renumbering the "name" section.
func (w *rewriter) custom(body []byte) ([]byte, error) {
	r := &reader{buf: body}
	name, err := r.name()
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if string(name) != "name" {
		return body, nil
	}
	out := make([]byte, 0, len(body)+16)
	out = append(out, body[:r.pos]...)
	for r.len() > 0 {
		id, _ := r.readByte()
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("%w: subsection %d: %w", errNameSection, id, err)
		}
		content, err := r.take(size)
		if err != nil {
			return nil, fmt.Errorf("%w: subsection %d: %w", errNameSection, id, err)
		}
		var sub []byte
		switch {
		case id == nameFunctions:
			sub, err = vector(content, 16, "entry", w.nameAssoc)
		case id == nameLocals || id == nameLabels:
			sub, err = vector(content, 16, "entry", func(r *reader, out []byte) ([]byte, error) {
				out, err := w.funcIndex(r, out)
				if err != nil {
					return nil, err
				}
				start := r.pos
				n, err := r.u32()
				if err != nil {
					return nil, err
				}
				for range n {
					if _, err := r.u32(); err != nil {
						return nil, err
					}
					if _, err := r.name(); err != nil {
						return nil, err
					}
				}
				return copySince(r, start, out), nil
			})
		case id == nameModule:
			// wazero reads the name whatever the subsection's size says:
			// only copy what it reads the same way.
			sub = content
			cr := &reader{buf: content}
			if _, err = cr.name(); err == nil && cr.len() != 0 {
				err = errSectionSize
			}
		case id <= nameLastKnown:
			sub = content // no function indices
		default:
			// Unknown contents might hold function indices: drop it.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: subsection %d: %w", errNameSection, id, err)
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, nil
}

// nameAssoc copies one (function index, name) pair, renumbered.
func (w *rewriter) nameAssoc(r *reader, out []byte) ([]byte, error) {
	out, err := w.funcIndex(r, out)
	if err != nil {
		return nil, err
	}
	start := r.pos
	if _, err := r.name(); err != nil {
		return nil, err
	}
	return copySince(r, start, out), nil
}
