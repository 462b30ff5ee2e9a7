package wasmhost

import (
	"errors"
	"time"
)

// Test hooks for the external tests of this package.

// RootVersions reports, per instance in the pool's slots (by id), the
// configuration version of each root context and the streams attached to
// it. It panics when the instance's version index and its contexts
// disagree.
func RootVersions(p *Plugin) map[int]map[uint64]int {
	out := map[int]map[uint64]int{}
	for _, in := range p.pool.all() {
		if in.closed.Load() || in.dead.Load() {
			continue
		}
		in.mu.Lock()
		m := map[uint64]int{}
		for id, gc := range in.contexts {
			if gc.rs == nil {
				continue
			}
			if in.roots[gc.rs.ver] != id {
				panic("root context missing from the version index")
			}
			m[gc.rs.ver.seq] = gc.rs.streams
		}
		if len(in.roots) != len(m) {
			panic("version index has roots that are not contexts")
		}
		in.mu.Unlock()
		out[in.id] = m
	}
	return out
}

// GuestContexts counts the contexts (root and stream) of the live
// instances.
func GuestContexts(p *Plugin) int {
	n := 0
	for _, in := range p.pool.live() {
		in.mu.Lock()
		n += len(in.contexts)
		in.mu.Unlock()
	}
	return n
}

// KillInstance marks the live instance id dead, as a trap would, and makes
// the pool replace it after 10ms.
func KillInstance(p *Plugin, id int) {
	p.pool.mu.Lock()
	p.pool.backoff = 10 * time.Millisecond
	p.pool.mu.Unlock()
	for _, in := range p.pool.live() {
		if in.id == id {
			in.mu.Lock()
			in.markDead(errors.New("killed by the test"))
			in.mu.Unlock()
		}
	}
}

// BindUnconfigured binds a version that no instance has configured and
// that is not the newest, so every stream starts its root lazily.
func BindUnconfigured(p *Plugin, cfg []byte) *Binding {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	v := &version{seq: 1000 + p.nextVer, config: cfg, holds: 1}
	return &Binding{p: p, v: v}
}

// Dispatched are the callbacks the host has the rewrite dispatch.
var Dispatched = dispatched
