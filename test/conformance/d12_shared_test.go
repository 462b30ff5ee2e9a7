package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Checklist D.12: shared data is one process-wide store with CAS semantics
// that every instance of every plugin sees, and plugin metrics are
// aggregated by name across instances. The harness runs every plugin with
// PoolSize 2; each probe instance draws a random id at configure time
// (var root.id) and reports it per request, so a test knows which
// instance served a request and can insist that both did.

// d12ProbeDoc renders a go/probe WasmPlugin with cfg (raw JSON) as its
// configuration; extra goes under spec (indented by two spaces).
func d12ProbeDoc(name, cfg, extra string) string {
	return plugin(name, "go/probe", json.RawMessage(cfg), extra)
}

// d12InstanceIDSteps are configure steps that give each instance an id.
const d12InstanceIDSteps = `{"op": "random", "bytes": 8, "to": "var:root.id"}`

// d12Metric returns the value of the first sample of the named metric on
// the admin /metrics page whose labels include every label ("k", "v", …);
// ok is false when there is none.
func d12Metric(t *testing.T, g *gw, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(g.Admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	var want []string
	for i := 0; i+1 < len(labels); i += 2 {
		want = append(want, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		metric, lbls, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		lbls = strings.TrimSuffix(lbls, "}")
		have := map[string]bool{}
		for _, l := range d12SplitLabels(lbls) {
			have[l] = true
		}
		match := true
		for _, w := range want {
			match = match && have[w]
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return f, true
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return 0, false
}

// d12SplitLabels splits `a="x",b="y,z"` at the commas between labels.
func d12SplitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// TestD12SharedDataCASAcrossInstances: a value written by one instance is
// read by the other, the CAS a read returns is accepted for a write only
// while no other instance wrote in between, and a stale CAS is refused
// with CAS_MISMATCH (8) — whichever instance wrote last.
//
// Every request runs, on whichever instance serves it:
//  1. read "d12-last" (the id of the instance that served the previous
//     request) into x-prev-instance, then write its own id there;
//  2. write "d12-cas" with the CAS this instance read last time (cas 0,
//     an unconditional write, on its first request) → x-set-status;
//  3. read "d12-cas" and keep its CAS for next time → x-cas;
//  4. write "d12-cas" with CAS 1, stale once anything wrote → x-stale-status.
func TestD12SharedDataCASAcrossInstances(t *testing.T) {
	up := newUpstream(t)
	cfg := `{"name": "d12cas", "on": {
	  "configure": [` + d12InstanceIDSteps + `],
	  "request_headers": [
	    {"op": "get_var", "name": "root.id", "to": "header:x-instance"},
	    {"op": "get_shared", "key": "d12-last", "to": "header:x-prev-instance", "status": "header:x-prev-status"},
	    {"op": "get_var", "name": "root.id", "to": "shared:d12-last"},
	    {"op": "set_shared", "key": "d12-cas", "value": "written", "cas_var": "root.cas", "status": "header:x-set-status"},
	    {"op": "get_shared", "key": "d12-cas", "to": "header:x-value", "cas_to": "var:root.cas"},
	    {"op": "get_var", "name": "root.cas", "to": "header:x-cas"},
	    {"op": "set_shared", "key": "d12-cas", "value": "stale", "cas": 1, "status": "header:x-stale-status"}
	  ]}}`
	// A new stream goes to the least busy instance, and among idle ones to
	// the one used last, so sequential requests would all land on one
	// instance. Every even request is therefore held at the upstream while
	// the next one runs: the held one takes the instance used last, the next
	// one the other. The instances serve the sequence X Y Y X X Y …
	arrived, release := make(chan struct{}), make(chan struct{})
	up.Handle = func(w http.ResponseWriter, r *http.Request, body []byte) {
		if strings.HasPrefix(r.URL.Path, "/hold/") {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}
	g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d12cas", cfg, ""))

	// The expected status of step 2 follows from the order of requests:
	// a write with the CAS read by the same instance on its previous
	// request succeeds unless another instance wrote successfully since.
	lastRead := map[string]int{} // instance → index of its last request
	var successes []string       // instance of each successful write, in order
	successAt := []int{}         // request index of each successful write
	prevInstance := ""
	prevCAS := uint64(0)
	instances := map[string]bool{}
	mismatches := 0
	// check verifies request i from the headers the upstream received.
	check := func(i int, h http.Header) {
		t.Helper()
		inst := h.Get("X-Instance")
		if inst == "" {
			t.Fatalf("request %d: the probe reported no instance id; upstream saw %v", i, h)
		}
		instances[inst] = true

		// Step 1: the previous request's instance, whichever it was.
		if i == 0 {
			if got := h.Get("X-Prev-Status"); got != "1" {
				t.Errorf("request 0: get_shared of a missing key: status %q, want 1 (NOT_FOUND)", got)
			}
		} else if got := h.Get("X-Prev-Instance"); got != prevInstance {
			t.Errorf("request %d (instance %s): shared data d12-last = %q, want %q written by the previous request",
				i, inst, got, prevInstance)
		}

		// Step 2: CAS accepted or refused.
		want := "0"
		if last, ok := lastRead[inst]; ok {
			for k, w := range successes {
				if successAt[k] > last && w != inst {
					want = "8"
				}
			}
		}
		got := h.Get("X-Set-Status")
		if got != want {
			t.Errorf("request %d (instance %s): set_shared with the CAS it read before: status %q, want %q (history: writes by %v at %v)",
				i, inst, got, want, successes, successAt)
		}
		if got == "0" {
			successes = append(successes, inst)
			successAt = append(successAt, i)
		} else {
			mismatches++
		}
		lastRead[inst] = i

		// Step 3: the value and a CAS that never goes back or is 0.
		if v := h.Get("X-Value"); v != "written" {
			t.Errorf("request %d: d12-cas = %q, want %q", i, v, "written")
		}
		// A successful write assigns a new, larger CAS; a refused one
		// leaves the entry as the previous request left it.
		cas, err := strconv.ParseUint(h.Get("X-Cas"), 10, 32)
		switch {
		case err != nil || cas == 0:
			t.Errorf("request %d: CAS %q: want a non-zero number", i, h.Get("X-Cas"))
		case got == "0" && cas <= prevCAS:
			t.Errorf("request %d: CAS %d after a successful write, want more than the previous %d", i, cas, prevCAS)
		case got != "0" && cas != prevCAS:
			t.Errorf("request %d: CAS %d after a refused write, want the unchanged %d", i, cas, prevCAS)
		}
		prevCAS = cas

		// Step 4: a stale CAS.
		if got := h.Get("X-Stale-Status"); got != "8" {
			t.Errorf("request %d: set_shared with stale CAS 1: status %q, want 8 (CAS_MISMATCH)", i, got)
		}
		prevInstance = inst
	}
	for i := 0; i < 40 && (len(instances) < 2 || mismatches < 2 || i < 8); i += 2 {
		held := make(chan error, 1)
		go func() {
			resp, err := http.Get(g.URL + fmt.Sprintf("/hold/%d", i))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			held <- err
		}()
		select {
		case <-arrived:
		case err := <-held:
			t.Fatalf("request %d (held): ended before reaching the upstream: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d (held) did not reach the upstream", i)
		}
		check(i, d12LastSeen(t, up).Header)
		resp, body := g.Do("GET", fmt.Sprintf("/cas/%d", i+1), "")
		release <- struct{}{}
		if err := <-held; err != nil {
			t.Fatalf("request %d (held): %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i+1, resp.StatusCode, body)
		}
		check(i+1, d12LastSeen(t, up).Header)
		if t.Failed() {
			break
		}
	}
	if len(instances) != 2 {
		t.Fatalf("requests were served by %d instance(s), want both of the pool of 2: %v", len(instances), instances)
	}
	if mismatches < 2 {
		t.Fatalf("saw %d CAS mismatch(es) between instances, want at least 2 (writes by %v)", mismatches, successes)
	}
}

// d12LastSeen is the newest request u received.
func d12LastSeen(t *testing.T, u *upstream) seen {
	t.Helper()
	reqs := u.Requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return reqs[len(reqs)-1]
}

// TestD12MetricsAggregatedAcrossInstances: a counter incremented by
// requests on both instances is one series on /metrics equal to the
// number of requests, and proxy_get_metric in either instance reads that
// same total.
func TestD12MetricsAggregatedAcrossInstances(t *testing.T) {
	up := newUpstream(t)
	cfg := `{"name": "d12m", "on": {
	  "configure": [` + d12InstanceIDSteps + `,
	    {"op": "define_metric", "type": "counter", "name": "d12_requests", "status": "var:root.define"}],
	  "request_headers": [
	    {"op": "get_var", "name": "root.id", "to": "header:x-instance"},
	    {"op": "get_var", "name": "root.define", "to": "header:x-define-status"},
	    {"op": "increment_metric", "name": "d12_requests", "status": "header:x-incr-status"},
	    {"op": "get_metric", "name": "d12_requests", "to": "header:x-metric"}
	  ]}}`
	g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d12m", cfg, ""))

	// Some requests in parallel (both instances busy at once), then
	// sequential ones.
	const parallel, sequential = 8, 12
	var wg sync.WaitGroup
	errs := make(chan string, parallel)
	for i := 0; i < parallel; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(g.URL + fmt.Sprintf("/metric/p%d", i))
			if err != nil {
				errs <- err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- resp.Status
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("parallel request: %s", e)
	}
	for i := 0; i < sequential; i++ {
		resp, body := g.Do("GET", fmt.Sprintf("/metric/s%d", i), "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
		h := d12LastSeen(t, up).Header
		if h.Get("X-Define-Status") != "0" || h.Get("X-Incr-Status") != "0" {
			t.Fatalf("define_metric status %q, increment_metric status %q; want 0 and 0",
				h.Get("X-Define-Status"), h.Get("X-Incr-Status"))
		}
		// proxy_get_metric in whichever instance: the global total so far.
		want := strconv.Itoa(parallel + i + 1)
		if got := h.Get("X-Metric"); got != want {
			t.Errorf("request %d (instance %s): get_metric = %q, want the total over all instances %s",
				i, h.Get("X-Instance"), got, want)
		}
	}
	instances := map[string]int{} // requests per instance
	for _, r := range up.Requests() {
		instances[r.Header.Get("X-Instance")]++
	}
	if len(instances) != 2 {
		t.Fatalf("requests per instance %v, want requests on both instances of the pool of 2", instances)
	}
	total := float64(parallel + sequential)
	got, ok := d12Metric(t, g, "sluice_plugin_counter_total", "plugin", "d12m", "name", "d12_requests")
	if !ok || got != total {
		t.Errorf("sluice_plugin_counter_total{plugin=d12m,name=d12_requests} = %v (present %v), want %v", got, ok, total)
	}
}

// d12WaitMetric polls a metric until cond holds; it fails after within.
func d12WaitMetric(t *testing.T, g *gw, within time.Duration, what string, cond func(v float64, ok bool) bool, name string, labels ...string) float64 {
	t.Helper()
	var v float64
	var ok bool
	deadline := time.Now().Add(within)
	for {
		v, ok = d12Metric(t, g, name, labels...)
		if cond(v, ok) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s%v = %v (present %v)", within, what, name, labels, v, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
