package app_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugins"
)

// stormStep is the configuration of reload i of the storm and the outcome
// it must have: a configuration change (same code), a code change (the
// other module), or a broken version (code that does not compile, or a
// configuration the plugin rejects) that must leave the previous one
// serving.
func stormStep(i int, cur pluginSpec) (pluginSpec, string) {
	switch i % 3 {
	case 0:
		next := cur
		next.value = fmt.Sprintf("%s-%d", cur.value[:1], i)
		return next, plugins.OutcomeConfigUpdated
	case 1:
		if cur.mod == probe {
			return pluginSpec{name: "a", mod: hello, value: fmt.Sprintf("h-%d", i)}, plugins.OutcomeCodeUpdated
		}
		return pluginSpec{name: "a", mod: probe, value: fmt.Sprintf("p-%d", i)}, plugins.OutcomeCodeUpdated
	default:
		if i%2 == 0 {
			return pluginSpec{name: "a", mod: broken, value: "p-broken"}, plugins.OutcomeKeptPrevious
		}
		bad := cur
		bad.value, bad.reject = cur.value[:1]+"-rejected", true
		return bad, plugins.OutcomeKeptPrevious
	}
}

// TestReloadStorm is issue 5 §5: 100 reloads alternating configuration
// changes, code changes and broken plugins under steady load (4 clients
// and a slow SSE stream at a time). No request fails; every request runs
// with one configuration in every phase (the header the upstream saw, the
// response header and the body tags agree); streams in flight finish on
// the instance they started on; afterwards only the current pool is live
// and the heap is back near its baseline.
func TestReloadStorm(t *testing.T) {
	const reloads = 100
	cur := pluginSpec{name: "a", mod: probe, value: "p-0"}
	// One instance per pool: the storm builds a pool per code change, and
	// instantiating Go-built modules dominates its time under -race.
	cfg := one(cur)
	cfg.pool = 1
	r := newRig(t, cfg)

	// Warm up, then take the baseline.
	for i := 0; i < 20; i++ {
		if _, err := consistent(r.mustGet("/")); err != nil {
			t.Fatal(err)
		}
	}
	baseline := heap()

	var (
		stop             = make(chan struct{})
		wg               sync.WaitGroup
		requests, events atomic.Int64
		streams          atomic.Int64
		errMu            sync.Mutex
		errs             []string
	)
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for c := 0; c < 4; c++ {
		wg.Go(func() {
			for !stopped() {
				s, err := r.get("/")
				requests.Add(1)
				if err != nil {
					fail("client %d: %v", c, err)
					continue
				}
				if _, err := consistent(s); err != nil {
					fail("client %d: %v", c, err)
				}
			}
		})
	}
	wg.Go(func() {
		for !stopped() {
			const n = 5
			s, err := r.openSSE(n)
			if err != nil {
				fail("sse: %v", err)
				continue
			}
			streams.Add(1)
			for i := 0; i < n; i++ {
				tag, err := r.next(s)
				if err != nil {
					fail("sse %q event %d: %v", s.header, i, err)
					break
				}
				events.Add(1)
				if want := "|" + s.header; s.header[:1] == "p" && tag != want {
					fail("sse started on %q: event %d tagged %q (another instance or configuration)", s.header, i, tag)
				}
				time.Sleep(15 * time.Millisecond) // pace the stream across reloads
			}
			if _, err := s.finish(); err != nil {
				fail("sse %q: %v", s.header, err)
			}
			if got := s.resp.Header.Get("X-Seen-Cfg"); got != s.header {
				fail("sse: request phase saw %q, response phase %q", got, s.header)
			}
		}
	})

	start := time.Now()
	spent := map[string]time.Duration{}
	for i := 1; i <= reloads; i++ {
		next, want := stormStep(i, cur)
		res, err := r.reload(one(next))
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		spent[want] += time.Duration(res.Duration * float64(time.Second))
		if got := outcome(t, res, "a"); got.Action != want {
			t.Fatalf("reload %d (%+v): %+v, want %s", i, next, got, want)
		}
		if want != plugins.OutcomeKeptPrevious {
			cur = next
		}
		// Let some traffic through on each generation.
		before := requests.Load()
		for requests.Load() < before+4 && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
	}
	took := time.Since(start)
	t.Logf("time in reloads by outcome: %v", spent)
	close(stop)
	wg.Wait()
	t.Logf("%d reloads in %s; %d requests, %d streams (%d events) during them", reloads, took.Round(time.Millisecond), requests.Load(), streams.Load(), events.Load())
	for _, e := range errs {
		t.Error(e)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != cur.value {
		t.Errorf("after the storm: %q %v, want %q", got, err, cur.value)
	}
	if got := metric(t, r.app.Registry(), "sluice_config_reloads_total", map[string]string{"result": "success"}); got != reloads {
		t.Errorf("successful reloads: %v, want %d", got, reloads)
	}
	// Every retired generation drains; only the current pool stays.
	eventually(t, "old pools to close", func() bool {
		return metric(t, r.app.Registry(), "sluice_wasm_instances", map[string]string{"plugin": "a"}) == 1
	})
	var after uint64
	eventually(t, "the heap to return near its baseline", func() bool {
		after = heap()
		return after < baseline+96<<20
	})
	t.Logf("heap: baseline %d MiB, after %d MiB", baseline>>20, after>>20)
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
