package conformance

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// D.11: proxy_on_tick fires per root context per instance at the period the
// root set; period 0 stops it.

func TestD11TicksPerInstanceAtPeriodAndStopAtZero(t *testing.T) {
	const (
		period = 50 * time.Millisecond
		ticks  = 20 // per root context, then the root sets period 0
		pool   = 2
	)
	u := newUpstream(t)
	cfg := map[string]any{"name": "tick", "on": map[string]any{
		"configure": []any{
			// Logged before arming: the timer starts after this line's time.
			map[string]any{"op": "callback_arg", "arg": "root_id", "to": "log:arming"},
			map[string]any{"op": "set_tick_period", "ms": period.Milliseconds()},
		},
		"tick": []any{
			map[string]any{"op": "incr_shared", "key": "d11-ticks"},
			map[string]any{"op": "callback_arg", "arg": "root_id", "to": "log:tick"},
			map[string]any{"op": "set_tick_period", "ms": 0, "when": "call:" + strconv.Itoa(ticks)},
		},
		"response_headers": []any{
			map[string]any{"op": "get_shared", "key": "d11-ticks", "to": "header:x-ticks"},
		},
	}}
	g := startGateway(t, clusterAndRoute(u)+plugin("tick", "go/probe", cfg, ""))

	read := func() int {
		t.Helper()
		resp, _ := g.Do("GET", "/d11", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		n, _ := strconv.Atoi(resp.Header.Get("X-Ticks"))
		return n
	}

	// Every root ticks exactly `ticks` times, then stops itself: the shared
	// counter reaches pool×ticks. One instance alone could never get past
	// `ticks`.
	want := pool * ticks
	eventually(t, 30*time.Second, "the tick counter to reach "+strconv.Itoa(want), func() bool { return read() >= want })

	// Period 0 stops them: the counter stays at pool×ticks.
	quiet := time.Now().Add(10 * period)
	for time.Now().Before(quiet) {
		if n := read(); n != want {
			t.Fatalf("tick counter = %d after every root set period 0, want %d", n, want)
		}
		time.Sleep(period / 2)
	}

	// Each instance's root ticked on its own, not faster than the period.
	byInstance := map[string][]time.Time{}
	armed := map[string]time.Time{}
	for _, l := range dxLogRecords(g) {
		if l["plugin"] != "tick" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, l["time"])
		if err != nil {
			t.Fatalf("log time %q: %v", l["time"], err)
		}
		switch {
		case strings.HasPrefix(l["msg"], "probe[tick]: tick="):
			byInstance[l["instance"]] = append(byInstance[l["instance"]], ts)
		case strings.HasPrefix(l["msg"], "probe[tick]: arming="):
			armed[l["instance"]] = ts
		}
	}
	if len(byInstance) != pool {
		t.Fatalf("ticks logged by %d instances, want %d: %v", len(byInstance), pool, byInstance)
	}
	for inst, ts := range byInstance {
		if len(ts) != ticks {
			t.Errorf("instance %s ticked %d times, want %d", inst, len(ts), ticks)
			continue
		}
		// The n-th tick cannot fire before n periods after arming (log
		// times are truncated to the millisecond).
		if span, min := ts[len(ts)-1].Sub(armed[inst]), time.Duration(ticks)*period-time.Millisecond; armed[inst].IsZero() || span < min {
			t.Errorf("instance %s: %d ticks %s after arming the timer, want at least %s at a %s period", inst, ticks, span, min, period)
		}
	}
}

// A root that sets period 0 from inside a tick gets no further tick, even
// when its ticks take longer than the period (the timer fired again while
// the tick ran).
func TestD11PeriodZeroStopsEvenWhenTicksOverrunThePeriod(t *testing.T) {
	const ticks = 5
	u := newUpstream(t)
	cfg := map[string]any{"name": "slowtick", "on": map[string]any{
		"configure": []any{map[string]any{"op": "set_tick_period", "ms": 1}},
		"tick": []any{
			map[string]any{"op": "incr_shared", "key": "d11-slow-ticks"},
			// Busy work far longer than the 1 ms period.
			map[string]any{"op": "repeat", "count": 200, "steps": []any{
				map[string]any{"op": "random", "bytes": 4096, "to": "var:scratch"}}},
			map[string]any{"op": "set_tick_period", "ms": 0, "when": "call:" + strconv.Itoa(ticks)},
		},
		"response_headers": []any{map[string]any{"op": "get_shared", "key": "d11-slow-ticks", "to": "header:x-ticks"}},
	}}
	g := startGateway(t, clusterAndRoute(u)+plugin("slowtick", "go/probe", cfg, ""))
	read := func() int {
		resp, _ := g.Do("GET", "/d11", "")
		n, _ := strconv.Atoi(resp.Header.Get("X-Ticks"))
		return n
	}
	want := 2 * ticks // PoolSize 2
	eventually(t, 30*time.Second, "the tick counter to reach "+strconv.Itoa(want), func() bool { return read() >= want })
	quiet := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(quiet) {
		if n := read(); n != want {
			t.Fatalf("tick counter = %d after both roots set period 0 on their tick %d, want %d", n, ticks, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
