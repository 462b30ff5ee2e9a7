package loopguard

import (
	"errors"
	"fmt"
)

// errTruncated is reported when the input ends inside a value.
var errTruncated = errors.New("unexpected end of input")

// reader reads the primitive encodings of the binary format from a byte
// slice. Every method fails instead of reading past the end, so malformed
// input ends in an error, never a panic.
type reader struct {
	buf []byte
	pos int
}

func (r *reader) len() int { return len(r.buf) - r.pos }

func (r *reader) readByte() (byte, error) {
	if r.pos >= len(r.buf) {
		return 0, errTruncated
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

// expectByte reads one byte and fails unless it is want.
func (r *reader) expectByte(want byte, what string) error {
	b, err := r.readByte()
	if err != nil {
		return err
	}
	if b != want {
		return fmt.Errorf("%s: byte %#x, want %#x", what, b, want)
	}
	return nil
}

// take returns the next n bytes (aliasing the input).
func (r *reader) take(n uint32) ([]byte, error) {
	if uint64(n) > uint64(r.len()) {
		return nil, errTruncated
	}
	b := r.buf[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

// u32 reads an unsigned LEB128 value of at most 32 bits (at most 5 bytes,
// unused bits of the last byte zero).
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		b, err := r.readByte()
		if err != nil {
			return 0, err
		}
		if i == 4 && b&0xf0 != 0 {
			return 0, errors.New("u32 LEB128 overflows 32 bits")
		}
		v |= uint32(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("u32 LEB128 longer than 5 bytes")
}

// signed reads a signed LEB128 value of at most bits bits (32, 33 or 64)
// and checks that the unused bits of the last byte extend the sign.
func (r *reader) signed(bits int) (int64, error) {
	maxBytes := (bits + 6) / 7
	var v int64
	for i := 0; i < maxBytes; i++ {
		b, err := r.readByte()
		if err != nil {
			return 0, err
		}
		v |= int64(b&0x7f) << (7 * i)
		if b&0x80 != 0 {
			continue
		}
		if i == maxBytes-1 {
			used := uint(bits - 7*(maxBytes-1)) // value bits in the last byte
			sign := (b >> (used - 1)) & 1
			rest := (b & 0x7f) >> used
			if (sign == 0 && rest != 0) || (sign == 1 && rest != 0x7f>>used) {
				return 0, fmt.Errorf("s%d LEB128 overflows %d bits", bits, bits)
			}
		}
		if shift := 7 * (i + 1); shift < 64 && b&0x40 != 0 {
			v |= -1 << shift
		}
		return v, nil
	}
	return 0, fmt.Errorf("s%d LEB128 longer than %d bytes", bits, maxBytes)
}

// name reads a byte vector (module, field and custom section names).
func (r *reader) name() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// appendU32 appends v as unsigned LEB128 in the shortest form.
func appendU32(out []byte, v uint32) []byte {
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// appendS32 appends v as signed LEB128 in the shortest form.
func appendS32(out []byte, v int32) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}
