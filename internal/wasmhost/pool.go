package wasmhost

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Pool is a plugin's set of instances. Streams are pinned to the instance
// with the fewest streams among two candidates. A dead instance is replaced
// after a back-off; an instance past its memory limit, or one that asked
// to be rebuilt, drains while a replacement serves new streams.
type Pool struct {
	p    *Plugin
	size int

	mu       sync.Mutex
	slots    []*Instance // live or nil while being replaced
	draining map[*Instance]bool
	nextID   int
	closed   bool
	picks    uint64 // acquisitions so far; Instance.lastPick orders instances by recent use
	backoff  time.Duration
	reported int // live instances last added to the instances gauge

	// bg counts recycle and replacement goroutines; close waits for them so
	// that none instantiates into a runtime being closed. stop ends their
	// back-off sleeps.
	bg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
}

func newPool(p *Plugin, size int) *Pool {
	return &Pool{p: p, size: size, slots: make([]*Instance, size), draining: map[*Instance]bool{}, backoff: time.Second,
		stop: make(chan struct{})}
}

// fill creates every instance; the first one is the canary.
func (pl *Pool) fill(ctx context.Context) error {
	for i := range pl.slots {
		in, err := pl.spawn(ctx)
		if err != nil {
			return err
		}
		pl.slots[i] = in
	}
	pl.report()
	return nil
}

func (pl *Pool) spawn(ctx context.Context) (*Instance, error) {
	pl.mu.Lock()
	pl.nextID++
	id := pl.nextID
	pl.mu.Unlock()
	in, err := newInstance(ctx, pl.p, id)
	if err != nil {
		return nil, err
	}
	// A new instance configures only the newest version; streams of older
	// ones start their roots lazily (Instance.attach).
	in.mu.Lock()
	root, err := in.startRoot(pl.p.newestVersion())
	in.root = root
	in.mu.Unlock()
	if err != nil {
		in.close(ctx)
		if in.deathErr != nil {
			return nil, fmt.Errorf("start: %w", in.deathErr)
		}
		return nil, err
	}
	return in, nil
}

// acquire pins a stream to an instance; nil when none is alive. It takes
// the instance with the fewest streams and, among those, the one that took
// a stream last: at low concurrency one instance serves every stream and
// stays warm in the CPU caches (a Go guest called cold costs 20-50 times
// its warm time per call, docs/benchmarks.md), while concurrent streams
// still spread over the pool. A draining instance (being recycled, still
// in its slot until the replacement is up) takes new streams only when no
// other instance is alive.
func (pl *Pool) acquire() *Instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return nil
	}
	var pick *Instance
	pickFresh := false
	for _, in := range pl.slots {
		if in == nil || in.dead.Load() {
			continue
		}
		fresh := !pl.draining[in]
		switch {
		case pick == nil, fresh && !pickFresh:
		case fresh != pickFresh:
			continue
		default:
			if n, m := in.streams.Load(), pick.streams.Load(); n > m || n == m && in.lastPick < pick.lastPick {
				continue
			}
		}
		pick, pickFresh = in, fresh
	}
	if pick == nil {
		return nil
	}
	pl.picks++
	pick.lastPick = pl.picks
	pick.streams.Add(1)
	return pick
}

// release unpins a stream, closing a draining instance when it empties and
// recycling an instance that asked for it or grew too large.
func (pl *Pool) release(in *Instance) {
	in.streams.Add(-1)
	pl.mu.Lock()
	draining := pl.draining[in]
	// acquire pins streams only to instances in a slot (under mu), so once
	// an instance has left its slot an idle count read under mu is final.
	// A draining instance keeps its slot until its replacement is up, and
	// may get new streams until then.
	inSlot := false
	for _, s := range pl.slots {
		inSlot = inSlot || s == in
	}
	gone := !inSlot && in.streams.Load() == 0
	pl.mu.Unlock()
	if draining {
		if gone {
			pl.retire(in)
		}
		return
	}
	if in.dead.Load() {
		if gone { // replaced while this stream was still pinned to it
			in.close(context.Background())
		}
		return
	}
	if in.needRebuild.Load() || in.MemoryBytes() > pl.p.spec.MaxMemoryBytes {
		pl.recycle(in)
	}
}

// recycle replaces a healthy instance: the new one takes its slot, the old
// one drains. At most one instance per pool drains at a time.
func (pl *Pool) recycle(in *Instance) {
	pl.mu.Lock()
	if pl.closed || len(pl.draining) > 0 {
		pl.mu.Unlock()
		return
	}
	slot := -1
	for i, s := range pl.slots {
		if s == in {
			slot = i
		}
	}
	if slot < 0 {
		pl.mu.Unlock()
		return
	}
	pl.draining[in] = true
	pl.bg.Add(1)
	pl.mu.Unlock()
	go func() {
		defer pl.bg.Done()
		fresh, err := pl.spawn(context.Background())
		pl.mu.Lock()
		if err != nil || pl.closed {
			delete(pl.draining, in)
			pl.mu.Unlock()
			if fresh != nil {
				fresh.close(context.Background())
			}
			if err != nil {
				pl.p.logger.Error("plugin instance recycle failed; keeping the old one", "error", err)
			}
			return
		}
		pl.slots[slot] = fresh
		idle := in.streams.Load() == 0
		pl.mu.Unlock()
		if pl.p.metrics != nil {
			pl.p.metrics.recycles.WithLabelValues(pl.p.spec.Name).Inc()
		}
		pl.p.logger.Info("plugin instance recycled", "instance", in.id, "memory_bytes", in.MemoryBytes())
		if idle {
			pl.retire(in)
		}
		pl.report()
	}()
}

func (pl *Pool) retire(in *Instance) {
	pl.mu.Lock()
	delete(pl.draining, in)
	pl.mu.Unlock()
	in.close(context.Background())
	pl.report()
}

// replaceLater swaps a dead instance for a fresh one after the back-off.
func (pl *Pool) replaceLater(dead *Instance) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return
	}
	pl.bg.Add(1)
	pl.mu.Unlock()
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-pl.stop:
			return false
		}
	}
	go func() {
		defer pl.bg.Done()
		if !sleep(pl.backoff) {
			return
		}
		for attempt := 0; ; attempt++ {
			pl.mu.Lock()
			closed := pl.closed
			pl.mu.Unlock()
			if closed {
				return
			}
			fresh, err := pl.spawn(context.Background())
			if err == nil {
				pl.mu.Lock()
				replaced := false
				for i, s := range pl.slots {
					if s == dead {
						pl.slots[i] = fresh
						replaced = true
					}
				}
				closed = pl.closed
				pl.mu.Unlock()
				if !replaced || closed {
					fresh.close(context.Background())
				}
				if dead.streams.Load() == 0 {
					dead.close(context.Background())
				}
				pl.report()
				pl.p.logger.Info("plugin instance replaced after a crash", "old", dead.id, "new", fresh.id)
				return
			}
			pl.p.logger.Error("plugin instance replacement failed", "error", err, "attempt", attempt+1)
			if !sleep(min(pl.backoff*time.Duration(1<<min(attempt, 5)), 30*time.Second)) {
				return
			}
		}
	}()
}

// live returns the live instances.
func (pl *Pool) live() []*Instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var out []*Instance
	for _, in := range pl.slots {
		if in != nil && !in.dead.Load() && !in.closed.Load() {
			out = append(out, in)
		}
	}
	return out
}

// all returns every instance that may hold root contexts: the slots and
// the draining ones.
func (pl *Pool) all() []*Instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var out []*Instance
	for _, in := range pl.slots {
		if in != nil {
			out = append(out, in)
		}
	}
	for in := range pl.draining {
		out = append(out, in)
	}
	return out
}

// setConfig records the configuration new instances start with.
func (pl *Pool) setConfig(cfg []byte) {
	pl.mu.Lock()
	pl.p.spec.Config = cfg
	pl.mu.Unlock()
}

func (pl *Pool) close(ctx context.Context) {
	pl.mu.Lock()
	pl.closed = true
	pl.mu.Unlock()
	pl.stopOnce.Do(func() { close(pl.stop) })
	pl.bg.Wait() // a recycle may have put a fresh instance in a slot meanwhile
	pl.mu.Lock()
	all := append([]*Instance(nil), pl.slots...)
	for in := range pl.draining {
		all = append(all, in)
	}
	pl.mu.Unlock()
	for _, in := range all {
		if in != nil {
			in.close(ctx)
		}
	}
	pl.report()
	pl.p.releaseModule()
}

func (pl *Pool) stats() (live int, memory []uint64) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, in := range pl.slots {
		if in != nil && !in.dead.Load() && !in.closed.Load() {
			live++
			memory = append(memory, in.MemoryBytes())
		}
	}
	return live, memory
}

func (pl *Pool) report() {
	if pl.p.metrics == nil {
		return
	}
	// Add the change rather than Set: during a code update an old and a new
	// pool of the same plugin name are live at once and the gauge is their sum.
	pl.mu.Lock()
	live := 0
	for _, in := range pl.slots {
		if in != nil && !in.dead.Load() && !in.closed.Load() {
			live++
		}
	}
	d := live - pl.reported
	pl.reported = live
	pl.mu.Unlock()
	if d != 0 {
		pl.p.metrics.instances.WithLabelValues(pl.p.spec.Name).Add(float64(d))
	}
}

// drain stops pinning new streams, waits until every pinned stream is gone
// or ctx ends, then closes the instances.
func (pl *Pool) drain(ctx context.Context) {
	pl.mu.Lock()
	pl.closed = true
	all := append([]*Instance(nil), pl.slots...)
	for in := range pl.draining {
		all = append(all, in)
	}
	pl.mu.Unlock()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		busy := false
		for _, in := range all {
			if in != nil && in.streams.Load() > 0 {
				busy = true
			}
		}
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
			pl.p.logger.Warn("plugin drain deadline reached; closing instances with streams still attached")
			pl.close(context.Background())
			return
		case <-t.C:
		}
	}
	pl.close(context.Background())
}
