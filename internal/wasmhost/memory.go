package wasmhost

import (
	"encoding/binary"
	"errors"
)

var errOutOfGuestMemory = errors.New("guest allocator returned 0")

// read returns a view of guest memory [ptr, ptr+size). The view is detached
// by any later guest call (memory.grow); copy what must survive.
func (in *Instance) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return in.mem.Read(ptr, size)
}

// readString copies a guest string.
func (in *Instance) readString(ptr, size uint32) (string, bool) {
	b, ok := in.read(ptr, size)
	if !ok {
		return "", false
	}
	return string(b), true
}

// readCopy copies guest bytes.
func (in *Instance) readCopy(ptr, size uint32) ([]byte, bool) {
	b, ok := in.read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (in *Instance) writeU32(ptr, v uint32) bool { return in.mem.WriteUint32Le(ptr, v) }

func (in *Instance) writeU64(ptr uint32, v uint64) bool { return in.mem.WriteUint64Le(ptr, v) }

// allocate asks the guest for size bytes (re-entrant guest call).
func (in *Instance) allocate(size uint32) (uint32, error) {
	in.stack[0] = uint64(size)
	saveCur, saveEff := in.current, in.effective
	err := in.fnAlloc.CallWithStack(in.callCtx, in.stack[:1])
	in.current, in.effective = saveCur, saveEff
	if err != nil {
		return 0, err
	}
	p := uint32(in.stack[0])
	if p == 0 {
		return 0, errOutOfGuestMemory
	}
	return p, nil
}

// returnBytes hands data to the guest through the (ptr, size) out
// pointers: allocate, copy, then store pointer and size before anything
// else can allocate. Empty data writes zeros and allocates nothing.
func (in *Instance) returnBytes(data []byte, ptrPtr, sizePtr uint32) Status {
	if ptrPtr == 0 && sizePtr == 0 {
		return StatusOK
	}
	if len(data) == 0 {
		if !in.writeU32(ptrPtr, 0) || !in.writeU32(sizePtr, 0) {
			return StatusInvalidMemoryAccess
		}
		return StatusOK
	}
	if uint64(len(data)) > uint64(in.mem.Size()) && uint64(len(data)) > 1<<31 {
		return StatusInvalidMemoryAccess
	}
	p, err := in.allocate(uint32(len(data)))
	if err != nil {
		if errors.Is(err, errOutOfGuestMemory) {
			return StatusInvalidMemoryAccess
		}
		in.trapInHostcall(err)
		return StatusInternalFailure
	}
	if !in.mem.Write(p, data) || !in.writeU32(ptrPtr, p) || !in.writeU32(sizePtr, uint32(len(data))) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// encodePairs serializes a header map or list in Proxy-Wasm pairs form.
func encodePairs(keys, vals []string) []byte {
	if len(keys) == 0 {
		return nil
	}
	size := 4
	for i := range keys {
		size += 8 + len(keys[i]) + len(vals[i]) + 2
	}
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, uint32(len(keys)))
	off := 4
	for i := range keys {
		binary.LittleEndian.PutUint32(b[off:], uint32(len(keys[i])))
		binary.LittleEndian.PutUint32(b[off+4:], uint32(len(vals[i])))
		off += 8
	}
	for i := range keys {
		off += copy(b[off:], keys[i])
		b[off] = 0
		off++
		off += copy(b[off:], vals[i])
		b[off] = 0
		off++
	}
	return b
}

var errBadPairs = errors.New("malformed header pairs")

// decodePairs parses the pairs form. Empty input (0 bytes, one NUL, or a
// zero count) is an empty list.
func decodePairs(b []byte) (keys, vals []string, err error) {
	if len(b) < 4 {
		if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
			return nil, nil, nil
		}
		return nil, nil, errBadPairs
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 {
		return nil, nil, nil
	}
	if uint64(n)*8+4 > uint64(len(b)) {
		return nil, nil, errBadPairs
	}
	sizes := b[4 : 4+n*8]
	data := b[4+n*8:]
	keys = make([]string, 0, n)
	vals = make([]string, 0, n)
	off := uint64(0)
	for i := uint32(0); i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(sizes[i*8:]))
		vl := uint64(binary.LittleEndian.Uint32(sizes[i*8+4:]))
		if off+kl+1+vl+1 > uint64(len(data)) {
			return nil, nil, errBadPairs
		}
		keys = append(keys, string(data[off:off+kl]))
		off += kl + 1
		vals = append(vals, string(data[off:off+vl]))
		off += vl + 1
	}
	return keys, vals, nil
}
