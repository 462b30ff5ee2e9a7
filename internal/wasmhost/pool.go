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
	rr       uint32
	backoff  time.Duration
}

func newPool(p *Plugin, size int) *Pool {
	return &Pool{p: p, size: size, slots: make([]*Instance, size), draining: map[*Instance]bool{}, backoff: time.Second}
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
	pl.mu.Lock()
	cfg := pl.p.spec.Config
	pl.mu.Unlock()
	in.mu.Lock()
	root, err := in.startRoot(cfg)
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

// acquire pins a stream to an instance; nil when none is alive.
func (pl *Pool) acquire() *Instance {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	n := len(pl.slots)
	if n == 0 || pl.closed {
		return nil
	}
	pl.rr++
	a := pl.slots[int(pl.rr)%n]
	b := pl.slots[int(pl.rr*7+3)%n]
	pick := a
	if pick == nil || pick.dead.Load() || (b != nil && !b.dead.Load() && b.streams.Load() < pick.streams.Load()) {
		pick = b
	}
	if pick == nil || pick.dead.Load() {
		for _, in := range pl.slots {
			if in != nil && !in.dead.Load() {
				pick = in
				break
			}
		}
	}
	if pick == nil || pick.dead.Load() {
		return nil
	}
	pick.streams.Add(1)
	return pick
}

// release unpins a stream, closing a draining instance when it empties and
// recycling an instance that asked for it or grew too large.
func (pl *Pool) release(in *Instance) {
	left := in.streams.Add(-1)
	pl.mu.Lock()
	draining := pl.draining[in]
	pl.mu.Unlock()
	if draining {
		if left == 0 {
			pl.retire(in)
		}
		return
	}
	if in.dead.Load() {
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
	pl.mu.Unlock()
	go func() {
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
	go func() {
		time.Sleep(pl.backoff)
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
			time.Sleep(min(pl.backoff*time.Duration(1<<min(attempt, 5)), 30*time.Second))
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

// setConfig records the configuration new instances start with.
func (pl *Pool) setConfig(cfg []byte) {
	pl.mu.Lock()
	pl.p.spec.Config = cfg
	pl.mu.Unlock()
}

func (pl *Pool) close(ctx context.Context) {
	pl.mu.Lock()
	pl.closed = true
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
	live, _ := pl.stats()
	pl.p.metrics.instances.WithLabelValues(pl.p.spec.Name).Set(float64(live))
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
