package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/wasmhost"
)

// D.16: many streams at once over a fixed pool of instances. Streams are
// pinned and every guest call into an instance is serialised (the race
// detector watches the host; a mixed-up context would show as a wrong
// echo), the instance count stays at the pool size, memory stays bounded,
// and an instance past its memory threshold is recycled without failing a
// request.

// d16Echo is a probe that remembers the request's x-client-id in a stream
// variable and returns it in a response header, after a little busy work
// so that streams interleave inside an instance.
func d16Echo(name string) map[string]any {
	return map[string]any{"name": name, "on": map[string]any{
		"request_headers": []any{
			map[string]any{"op": "get_header", "key": "x-client-id", "to": "var:cid"},
			map[string]any{"op": "set_header", "key": "x-seen-by-" + name, "value": "yes"},
			map[string]any{"op": "repeat", "count": 8, "steps": []any{
				map[string]any{"op": "random", "bytes": 64, "to": "var:scratch"}}},
		},
		"response_headers": []any{
			map[string]any{"op": "get_var", "name": "cid", "to": "header:x-echo-" + name},
		},
	}}
}

// d16Load runs clients×perClient requests through url and reports every
// failure (status, missing or wrong echo headers).
func d16Load(url string, clients, perClient int, echo []string) (done int64, failures []string) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
		n  atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for i := 0; i < perClient; i++ {
				id := fmt.Sprintf("c%d-r%d", c, i)
				req, _ := http.NewRequest("GET", url+"/d16/"+id, nil)
				req.Header.Set("X-Client-Id", id)
				resp, err := client.Do(req)
				if err != nil {
					fail("%s: %v", id, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				n.Add(1)
				switch {
				case err != nil:
					fail("%s: reading body: %v", id, err)
				case resp.StatusCode != http.StatusOK:
					fail("%s: status %d: %s", id, resp.StatusCode, body)
				case !strings.Contains(string(body), "/d16/"+id):
					fail("%s: body %q is another request's", id, body)
				}
				for _, e := range echo {
					if got := resp.Header.Get("X-Echo-" + e); got != id {
						fail("%s: x-echo-%s = %q", id, e, got)
					}
				}
			}
		}(c)
	}
	wg.Wait()
	return n.Load(), failures
}

func TestD16ConcurrentStreamsOverAFixedPool(t *testing.T) {
	const (
		clients   = 8
		perClient = 50
		pool      = 2
	)
	u := newUpstream(t)
	g := startGateway(t, clusterAndRoute(u)+
		plugin("pa", "go/probe", d16Echo("pa"), "  priority: 20\n")+
		plugin("pb", "go/probe", d16Echo("pb"), "  priority: 10\n"))

	done, failures := d16Load(g.URL, clients, perClient, []string{"pa", "pb"})
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, e.g.:\n%s", len(failures), done, strings.Join(failures, "\n"))
	}
	if done != clients*perClient {
		t.Fatalf("%d requests done, want %d", done, clients*perClient)
	}
	reqs := u.Requests()
	if len(reqs) != clients*perClient {
		t.Fatalf("upstream got %d requests, want %d", len(reqs), clients*perClient)
	}
	for _, r := range reqs {
		if r.Header.Get("X-Seen-By-Pa") != "yes" || r.Header.Get("X-Seen-By-Pb") != "yes" {
			t.Fatalf("upstream request %s missed a plugin's header: %v", r.Path, r.Header)
		}
	}
	for _, p := range []string{"pa", "pb"} {
		if v, _ := dxMetric(t, g, "sluice_wasm_instances", "plugin", p); v != pool {
			t.Errorf("sluice_wasm_instances{plugin=%s} = %v, want %d", p, v, pool)
		}
		if v, _ := dxMetric(t, g, "sluice_wasm_crashes_total", "plugin", p); v != 0 {
			t.Errorf("sluice_wasm_crashes_total{plugin=%s} = %v, want 0", p, v)
		}
		var mems []float64
		for _, s := range dxMetricSamples(t, g.app.Registry().Gather, "sluice_wasm_instance_memory_bytes") {
			if s.labels["plugin"] == p {
				mems = append(mems, s.value)
			}
		}
		if len(mems) != pool {
			t.Errorf("%s: memory reported for %d instances, want %d", p, len(mems), pool)
		}
		for _, m := range mems {
			if m <= 0 || m > 64<<20 {
				t.Errorf("%s: an instance has %v bytes of linear memory after %d light requests, want (0, 64 MiB]", p, m, done)
			}
		}
	}
}

// An instance whose linear memory grows past MaxMemoryBytes is replaced
// while traffic keeps flowing: no request fails, recycles are counted, and
// the memory of the live instances stays bounded. The threshold
// (spec.wasm.recycleMemoryMiB) is a Gateway setting the shared harness does
// not expose, so the plugins are built at the host level (MaxMemoryBytes).
func TestD16RecycleOnMemoryThresholdUnderLoad(t *testing.T) {
	const (
		pool      = 2
		threshold = 24 << 20
		growMiB   = 2 // kept by every request, forever
		clients   = 4
		perClient = 30
	)
	h := newDXHost(t)
	grow := h.mustPlugin("go/probe", wasmhost.PluginSpec{Name: "grow", PoolSize: pool, MaxMemoryBytes: threshold,
		Config: []byte(fmt.Sprintf(`{"name": "grow", "on": {
  "request_headers": [{"op": "get_header", "key": "x-client-id", "to": "var:cid"},
                      {"op": "alloc", "mib": %d, "to": "var:kept"}],
  "response_headers": [{"op": "get_var", "name": "cid", "to": "header:x-echo-grow"}]
}}`, growMiB))})
	echo := h.mustPlugin("go/probe", wasmhost.PluginSpec{Name: "echo", PoolSize: pool, Config: d16JSON(d16Echo("echo"))})
	h.setChain(grow, echo)
	u := newUpstream(t)
	var maxMem atomic.Uint64
	g := h.start(u)

	// Sample the live instances' memory while the load runs.
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			_, mems := grow.Instances()
			for _, m := range mems {
				if m > maxMem.Load() {
					maxMem.Store(m)
				}
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	done, failures := d16Load(g.URL, clients, perClient, []string{"grow", "echo"})
	close(stop)
	<-sampled
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed while instances were recycled, e.g.:\n%s", len(failures), done, strings.Join(failures, "\n"))
	}
	if done != clients*perClient {
		t.Fatalf("%d requests done, want %d", done, clients*perClient)
	}
	recycles, _ := dxGather(t, h.reg.Gather, "sluice_wasm_recycles_total", "plugin", "grow")
	// Without recycling each instance would hold ~clients*perClient*growMiB/pool MiB.
	if recycles < 2 {
		t.Errorf("sluice_wasm_recycles_total{plugin=grow} = %v, want ≥ 2 (%d MiB kept per request, threshold %d MiB)", recycles, growMiB, threshold>>20)
	}
	if v, _ := dxGather(t, h.reg.Gather, "sluice_wasm_recycles_total", "plugin", "echo"); v != 0 {
		t.Errorf("sluice_wasm_recycles_total{plugin=echo} = %v, want 0", v)
	}
	for _, p := range []string{"grow", "echo"} {
		if v, _ := dxGather(t, h.reg.Gather, "sluice_wasm_crashes_total", "plugin", p); v != 0 {
			t.Errorf("sluice_wasm_crashes_total{plugin=%s} = %v, want 0", p, v)
		}
	}
	// Bounded: a recycle starts when a stream leaves an instance past the
	// threshold, and only one instance drains at a time, so an instance may
	// overshoot while the other one's replacement starts. Without recycling
	// each instance would keep clients*perClient*growMiB/pool MiB.
	bound := uint64(2*threshold + clients*growMiB<<20)
	if unbounded := uint64(clients * perClient * growMiB / pool << 20); unbounded < 2*bound {
		t.Fatalf("test too small: %d MiB per instance without recycling vs a bound of %d MiB", unbounded>>20, bound>>20)
	}
	t.Logf("%d requests, %v recycles, max live instance memory %d MiB (threshold %d MiB)", done, recycles, maxMem.Load()>>20, threshold>>20)
	if m := maxMem.Load(); m > bound {
		t.Errorf("a live instance reached %d MiB, want ≤ %d MiB", m>>20, bound>>20)
	}
	// After the load the pool is back to its size, every instance alive.
	eventually(t, 10*time.Second, "the grow pool to settle at its size", func() bool {
		n, _ := grow.Instances()
		return n == pool
	})
	if v, _ := dxGather(t, h.reg.Gather, "sluice_wasm_instances", "plugin", "grow"); v != pool {
		t.Errorf("sluice_wasm_instances{plugin=grow} = %v, want %d", v, pool)
	}
	// Every recycle is counted and logged once. A recycle that began with
	// the last requests may still be between the two after the load: wait
	// for them to agree.
	eventually(t, 5*time.Second, "one \"plugin instance recycled\" log line per counted recycle", func() bool {
		n := len(h.find("plugin instance recycled", "grow", ""))
		v, _ := dxGather(t, h.reg.Gather, "sluice_wasm_recycles_total", "plugin", "grow")
		return float64(n) == v
	})
}

func d16JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
