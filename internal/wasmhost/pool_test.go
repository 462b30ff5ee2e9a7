package wasmhost

import "testing"

// TestPoolAcquirePolicy checks how streams are pinned: fewest streams
// first, the most recently used instance among equals (so one instance
// stays warm at low concurrency), draining and dead instances last.
func TestPoolAcquirePolicy(t *testing.T) {
	a, b, c := &Instance{id: 1}, &Instance{id: 2}, &Instance{id: 3}
	pl := newPool(nil, 3)
	pl.slots = []*Instance{a, b, c}
	acquire := func() *Instance {
		t.Helper()
		in := pl.acquire()
		if in == nil {
			t.Fatal("acquire: no instance")
		}
		return in
	}

	// Sequential streams (each released before the next) stay on one
	// instance.
	first := acquire()
	first.streams.Add(-1)
	for i := range 5 {
		in := acquire()
		if in != first {
			t.Fatalf("sequential stream %d went to instance %d, want %d", i, in.id, first.id)
		}
		in.streams.Add(-1)
	}

	// Concurrent streams spread: three held streams land on three
	// instances, the fourth on the one used most recently.
	held := map[*Instance]bool{}
	var last *Instance
	for range 3 {
		last = acquire()
		held[last] = true
	}
	if len(held) != 3 {
		t.Fatalf("three concurrent streams on %d instances, want 3", len(held))
	}
	if in := acquire(); in != last {
		t.Fatalf("fourth stream on instance %d, want the most recent (%d)", in.id, last.id)
	}
	for _, in := range pl.slots {
		in.streams.Store(0)
	}

	// A draining instance takes streams only when nothing else is alive;
	// a dead one never.
	pl.draining[a] = true
	b.dead.Store(true)
	for range 3 {
		if in := acquire(); in != c {
			t.Fatalf("stream went to instance %d, want 3 (1 draining, 2 dead)", in.id)
		}
	}
	c.dead.Store(true)
	if in := acquire(); in != a {
		t.Fatalf("stream went to instance %d, want the draining 1 (only one alive)", in.id)
	}
	a.dead.Store(true)
	if in := pl.acquire(); in != nil {
		t.Fatalf("stream pinned to instance %d although all are dead", in.id)
	}
	pl.slots[1] = nil // being replaced
	if in := pl.acquire(); in != nil {
		t.Fatalf("stream pinned to instance %d although none is alive", in.id)
	}
}
