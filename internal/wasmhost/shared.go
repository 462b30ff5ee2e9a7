package wasmhost

import (
	"sync"
)

// Shared is the process-wide shared data and shared queues of Proxy-Wasm
// (spec/host.md §1.3): one namespace (Higress sets no vm_id), CAS values
// from a global counter, queues that notify the registering root context.
// Safe for concurrent use.
type Shared struct {
	mu     sync.Mutex
	data   map[string]*sharedEntry
	cas    uint32
	queues map[uint32]*sharedQueue
	byName map[string]uint32
	nextQ  uint32
}

type sharedEntry struct {
	val []byte
	cas uint32
}

type sharedQueue struct {
	items [][]byte
	owner *Instance
	root  uint32
}

// NewShared returns an empty store.
func NewShared() *Shared {
	return &Shared{data: map[string]*sharedEntry{}, queues: map[uint32]*sharedQueue{}, byName: map[string]uint32{}}
}

func (s *Shared) nextCAS() uint32 {
	s.cas++
	if s.cas == 0 {
		s.cas = 1
	}
	return s.cas
}

// Get returns a copy of the value and its CAS.
func (s *Shared) Get(key string) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.val...), e.cas, true
}

// Set writes value; cas 0 writes unconditionally, otherwise it must match.
func (s *Shared) Set(key string, value []byte, cas uint32) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[key]
	if ok && cas != 0 && cas != e.cas {
		return StatusCASMismatch
	}
	if !ok {
		e = &sharedEntry{}
		s.data[key] = e
	}
	e.val = append(e.val[:0:0], value...)
	e.cas = s.nextCAS()
	return StatusOK
}

func queueKey(vmID, name string) string { return vmID + "\x00" + name }

// register creates or re-owns a queue.
func (s *Shared) register(vmID, name string, owner *Instance, root uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := queueKey(vmID, name)
	id, ok := s.byName[k]
	if !ok {
		s.nextQ++
		id = s.nextQ
		s.byName[k] = id
		s.queues[id] = &sharedQueue{}
	}
	q := s.queues[id]
	q.owner, q.root = owner, root
	return id
}

func (s *Shared) resolve(vmID, name string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byName[queueKey(vmID, name)]
	return id, ok
}

func (s *Shared) enqueue(id uint32, v []byte) (owner *Instance, root uint32, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[id]
	if !ok {
		return nil, 0, StatusNotFound
	}
	q.items = append(q.items, append([]byte(nil), v...))
	return q.owner, q.root, StatusOK
}

func (s *Shared) dequeue(id uint32) ([]byte, Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[id]
	if !ok {
		return nil, StatusNotFound
	}
	if len(q.items) == 0 {
		return nil, StatusEmpty
	}
	v := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return v, StatusOK
}
