package conformance

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Checklist D.6: proxy_http_call refuses a call without :authority (or
// :method, :path) and a call to an unknown cluster with BAD_ARGUMENT; a
// timeout, a connection failure and a reset each still produce a callback
// (internal/wasmhost/hostcall_callout.go: 504 "upstream request timeout"
// and 503 "… connection failure" synthesised like Envoy's async client;
// a reset delivers no headers and proxy_get_status = BROKEN_CONNECTION (9)
// "reset"); the callback edits the paused stream through the effective
// context; and a callout issued just before the stream ends still
// completes.

// d6ClusterDoc is a Cluster document named name with one endpoint.
func d6ClusterDoc(name, addr string) string {
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: %s}
spec:
  endpoints: [{address: %q}]
`, name, addr)
}

// d6ClosedAddr is a loopback address nothing listens on.
func d6ClosedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// d6EnvoyName is the outbound|<port>||<name> form of a cluster on addr.
func d6EnvoyName(name, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return "outbound|" + port + "||" + name
}

// TestD6HTTPCallDispatchRefusals: the dispatch status of proxy_http_call
// as the probe reports it — BAD_ARGUMENT (2) without :authority, :method
// or :path and for clusters that do not exist; OK for a complete call to
// an existing cluster, by plain and by Envoy name.
func TestD6HTTPCallDispatchRefusals(t *testing.T) {
	up := newUpstream(t)
	callee := newUpstream(t)
	full := `[[":method", "GET"], [":path", "/called"], [":authority", "callee.local"]]`
	steps := []string{}
	cases := []struct {
		header, cluster, headers, want string
	}{
		{"x-no-authority", "callee", `[[":method", "GET"], [":path", "/called"]]`, "2"},
		{"x-no-method", "callee", `[[":path", "/called"], [":authority", "callee.local"]]`, "2"},
		{"x-no-path", "callee", `[[":method", "GET"], [":authority", "callee.local"]]`, "2"},
		{"x-unknown-plain", "nope", full, "2"},
		{"x-unknown-envoy", "outbound|80||nope.local", full, "2"},
		{"x-wrong-port", d6EnvoyName("callee", "127.0.0.1:1"), full, "2"},
		{"x-known-plain", "callee", full, "0"},
		{"x-known-envoy", d6EnvoyName("callee", callee.Addr()), full, "0"},
	}
	for _, c := range cases {
		steps = append(steps, fmt.Sprintf(`{"op": "http_call", "cluster": %q, "headers": %s, "timeout_ms": 5000, "status": "header:%s"}`,
			c.cluster, c.headers, c.header))
	}
	cfg := `{"on": {"request_headers": [` + strings.Join(steps, ",") + `]}}`
	g := startGateway(t, clusterAndRoute(up)+d6ClusterDoc("callee", callee.Addr())+d12ProbeDoc("d6refuse", cfg, ""))

	resp, body := g.Do("GET", "/dispatch", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := d12LastSeen(t, up).Header
	for _, c := range cases {
		if got := h.Get(c.header); got != c.want {
			t.Errorf("%s: http_call to %q with headers %s: status %q, want %q", c.header, c.cluster, c.headers, got, c.want)
		}
	}
	// Only the two accepted calls reached the callee.
	eventually(t, 10*time.Second, "two callouts at the callee", func() bool { return len(callee.Requests()) >= 2 })
	for _, r := range callee.Requests() {
		if r.Path != "/called" || r.Host != "callee.local" || r.Method != "GET" {
			t.Errorf("callee got %s %s host %s, want GET /called host callee.local", r.Method, r.Path, r.Host)
		}
	}
	if n := len(callee.Requests()); n != 2 {
		t.Errorf("callee got %d requests, want 2 (refused calls must not be sent)", n)
	}
}

// d6CalloutProbe is a probe that pauses request headers on an http_call to
// cluster and, in the callback, reports what it got into request headers
// and resumes.
func d6CalloutProbe(cluster string, timeoutMs int) string {
	return fmt.Sprintf(`{"on": {"request_headers": {"steps": [
	  {"op": "http_call", "cluster": %q, "timeout_ms": %d, "status": "header:x-dispatch",
	   "headers": [[":method", "POST"], [":path", "/called?q=1"], [":authority", "callee.local"], ["x-probe-call", "1"]],
	   "body": "call-body",
	   "then": [
	     {"op": "callback_arg", "arg": "token", "to": "log:d6_callback_token"},
	     {"op": "callback_arg", "arg": "num_headers", "to": "header:x-cb-num-headers"},
	     {"op": "callback_arg", "arg": "body_size", "to": "header:x-cb-body-size"},
	     {"op": "get_header", "map": "http_call_response_headers", "key": ":status", "to": "header:x-cb-status", "status": "header:x-cb-status-lookup"},
	     {"op": "get_header", "map": "http_call_response_trailers", "key": "x-none", "status": "header:x-cb-trailer-lookup"},
	     {"op": "get_body", "encoding": "base64", "to": "header:x-cb-body"},
	     {"op": "get_status", "to": "header:x-cb-get-status", "msg_to": "header:x-cb-get-status-msg"},
	     {"op": "add_header", "key": "x-added-in-callback", "value": "yes"},
	     {"op": "continue_stream", "stream": "request", "status": "header:x-cb-continue"}
	   ]}
	], "action": "stop_all_watermark"}}}`, cluster, timeoutMs)
}

// TestD6HTTPCallCallbacks: every way a callout can end produces exactly
// one callback, which reads the result and edits the paused request
// through the effective context (headers added in the callback reach the
// upstream, and the request is resumed from there).
func TestD6HTTPCallCallbacks(t *testing.T) {
	type want struct {
		status, body, getStatus, getMsg, numHeaders string
	}
	cases := []struct {
		name      string
		handler   func(w http.ResponseWriter, r *http.Request, body []byte)
		dead      bool // the cluster's endpoint refuses connections
		timeoutMs int
		want      want
	}{
		{
			name: "response",
			handler: func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("X-Callee", "1")
				w.WriteHeader(201)
				_, _ = w.Write([]byte("callee says " + string(body)))
			},
			timeoutMs: 10000,
			want:      want{status: "201", body: "callee says call-body", getStatus: "0"},
		},
		{
			name: "timeout",
			handler: func(w http.ResponseWriter, r *http.Request, body []byte) {
				select { // until the gateway gives up on the callout
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
			},
			timeoutMs: 300,
			want:      want{status: "504", body: "upstream request timeout", getStatus: "0", numHeaders: "3"},
		},
		{
			name:      "connect-failure",
			dead:      true,
			timeoutMs: 10000,
			want: want{status: "503", body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
				getStatus: "0", numHeaders: "3"},
		},
		{
			name: "reset",
			handler: func(w http.ResponseWriter, r *http.Request, body []byte) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			timeoutMs: 10000,
			want:      want{numHeaders: "0", getStatus: "9", getMsg: "reset"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			addr := d6ClosedAddr(t)
			var callee *upstream
			if !c.dead {
				callee = newUpstream(t)
				callee.Handle = c.handler
				addr = callee.Addr()
			}
			g := startGateway(t, clusterAndRoute(up)+d6ClusterDoc("callee", addr)+
				d12ProbeDoc("d6cb", d6CalloutProbe(d6EnvoyName("callee", addr), c.timeoutMs), ""))

			start := time.Now()
			resp, body := g.Do("GET", "/paused", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			reqs := up.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests, want 1 (resumed from the callback)", len(reqs))
			}
			h := reqs[0].Header
			check := func(header, want string) {
				t.Helper()
				if got := h.Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
			if n := strings.Count(g.logs.String(), "d6_callback_token="); n != 1 {
				t.Errorf("the callout callback ran %d times, want exactly once", n)
			}
			check("X-Dispatch", "0")
			check("X-Cb-Trailer-Lookup", "1") // no trailers: NOT_FOUND, not a trap
			check("X-Added-In-Callback", "yes")
			check("X-Cb-Continue", "0")
			check("X-Cb-Get-Status", c.want.getStatus)
			check("X-Cb-Get-Status-Msg", c.want.getMsg)
			if c.want.numHeaders != "" {
				check("X-Cb-Num-Headers", c.want.numHeaders)
			}
			if c.want.status == "" {
				check("X-Cb-Status-Lookup", "1") // NOT_FOUND: no :status at all
				check("X-Cb-Body-Size", "0")
			} else {
				check("X-Cb-Status-Lookup", "0")
				check("X-Cb-Status", c.want.status)
				check("X-Cb-Body-Size", strconv.Itoa(len(c.want.body)))
				check("X-Cb-Body", base64.StdEncoding.EncodeToString([]byte(c.want.body)))
			}
			if c.name == "timeout" {
				if d := time.Since(start); d < 300*time.Millisecond {
					t.Errorf("the timed-out callout completed after %s, before its 300ms timeout", d)
				}
			}
			if callee != nil {
				cr := callee.Requests()
				if len(cr) == 0 {
					t.Fatal("the callee got no request")
				}
				r := cr[0]
				if r.Method != "POST" || r.Path != "/called?q=1" || r.Host != "callee.local" || r.Body != "call-body" ||
					r.Header.Get("X-Probe-Call") != "1" || r.Header.Get("Content-Length") != "" && r.Header.Get("Content-Length") != "9" {
					t.Errorf("callee got %s %s host %q body %q headers %v; want POST /called?q=1 host callee.local body call-body x-probe-call: 1",
						r.Method, r.Path, r.Host, r.Body, r.Header)
				}
				if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
					t.Errorf("callee got x-forwarded-for %q; the host adds none to callouts", xff)
				}
			}
		})
	}
}

// TestD6HTTPCallAtStreamEndCompletes: a callout issued in the stream's last
// moments — from proxy_on_log, and from the last response body callback —
// is not cancelled when the stream ends. The callee answers only after the
// stream is gone (its access-log line is written after on_log, on_done and
// on_delete of every plugin): its request must still be alive then, and
// its response must be delivered to the plugin, as exactly one more guest
// call (proxy_on_http_call_response, counted by
// sluice_wasm_call_duration_seconds). The SDK then drops the user callback
// because the calling stream context was deleted (spec/host.md §2.5.6), so
// the callback's shared-data write must not appear; the instance keeps
// serving.
func TestD6HTTPCallAtStreamEndCompletes(t *testing.T) {
	for _, phase := range []string{"log", "response_body"} {
		t.Run(phase, func(t *testing.T) {
			up := newUpstream(t)
			callee := newUpstream(t)
			arrived := make(chan struct{}, 1)
			release := make(chan struct{})
			var mu sync.Mutex
			var answered []string
			callee.Handle = func(w http.ResponseWriter, r *http.Request, body []byte) {
				select {
				case arrived <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-time.After(60 * time.Second):
				}
				state := "alive"
				if r.Context().Err() != nil {
					state = "cancelled: " + r.Context().Err().Error()
				}
				_, err := w.Write([]byte("late answer"))
				if err == nil {
					err = http.NewResponseController(w).Flush()
				}
				if err != nil {
					state += "; write: " + err.Error()
				}
				mu.Lock()
				answered = append(answered, state)
				mu.Unlock()
			}
			when := ""
			if phase == "response_body" {
				when = `, "when": "eos"`
			}
			cfg := fmt.Sprintf(`{"on": {
			  %q: [
			    {"op": "http_call", "cluster": "callee", "timeout_ms": 60000%s,
			     "headers": [[":method", "GET"], [":path", "/late"], [":authority", "callee.local"]],
			     "status": "log:late_dispatch",
			     "then": [{"op": "set_shared", "key": "d6-late-callback", "value": "ran"}]}],
			  "request_headers": [
			    {"op": "get_shared", "key": "d6-late-callback", "to": "header:x-late-callback", "status": "header:x-late-callback-status"}]
			}}`, phase, when)
			g := startGateway(t, clusterAndRoute(up)+d6ClusterDoc("callee", callee.Addr())+d12ProbeDoc("d6late", cfg, ""))
			labels := []string{"plugin", "d6late"}
			completions := append(labels, "callback", "http_call_response")

			resp, body := g.Do("GET", "/ending", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			eventually(t, 10*time.Second, "the access-log line of the request", func() bool { return len(g.AccessLog()) == 1 })
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the callout issued at stream end never reached the callee")
			}
			// Every guest call of the stream is over; the only one left is
			// the completion.
			before, _ := d12Metric(t, g, "sluice_wasm_call_duration_seconds_count", completions...)
			close(release)
			eventually(t, 10*time.Second, "the callee's answer", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(answered) == 1
			})
			mu.Lock()
			state := answered[0]
			mu.Unlock()
			if state != "alive" {
				t.Errorf("the callout was cut off when its stream ended: %s", state)
			}
			got := d12WaitMetric(t, g, 10*time.Second, "the completion delivered to the plugin",
				func(v float64, ok bool) bool { return ok && v >= before+1 },
				"sluice_wasm_call_duration_seconds_count", completions...)
			if got != before+1 {
				t.Errorf("%v guest calls after the callee answered, want exactly 1 (proxy_on_http_call_response)", got-before)
			}

			// The instance that got the late completion is healthy.
			resp, body = g.Do("GET", "/after", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request after the late completion: status %d: %s", resp.StatusCode, body)
			}
			if n, ok := d12Metric(t, g, "sluice_wasm_crashes_total", labels...); ok && n != 0 {
				t.Errorf("sluice_wasm_crashes_total = %v after the late completion, want 0", n)
			}
			if n, _ := d12Metric(t, g, "sluice_wasm_instances", labels...); n != 2 {
				t.Errorf("sluice_wasm_instances = %v after the late completion, want 2", n)
			}
			if got := d12LastSeen(t, up).Header.Get("X-Late-Callback-Status"); got != "1" {
				t.Errorf("the user callback of a callout whose stream context was deleted ran (get_shared status %q, value %q); "+
					"the completion must come after proxy_on_delete of the stream",
					got, d12LastSeen(t, up).Header.Get("X-Late-Callback"))
			}
		})
	}
}

// TestD6RedisCallAtStreamEndCompletes: a Redis command issued from
// proxy_on_log (ai-cache's final SET, ai-token-ratelimit's accounting)
// executes although its stream is over: the counter it increments is
// visible in the server afterwards.
func TestD6RedisCallAtStreamEndCompletes(t *testing.T) {
	addr := d7StartRedis(t)
	up := newUpstream(t)
	cfg := `{"on": {
	  "configure": [{"op": "redis_init", "cluster": "kv", "timeout_ms": 5000, "status": "var:root.init"}],
	  "request_headers": [{"op": "get_var", "name": "root.init", "to": "header:x-redis-init"}],
	  "log": [{"op": "redis_call", "cluster": "kv", "command": ["INCR", "d6-late"], "status": "log:late_redis",
	           "then": [{"op": "set_shared", "key": "d6-late-redis-callback", "value": "ran"}]}]}}`
	g := startGateway(t, clusterAndRoute(up)+d7RedisClusterDoc("kv", addr, "")+d12ProbeDoc("d6lateredis", cfg, ""))
	rdb := d7RedisClient(t, addr, "", 0)

	resp, body := g.Do("GET", "/ending", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := d12LastSeen(t, up).Header.Get("X-Redis-Init"); got != "0" {
		t.Fatalf("redis_init at configure: status %q, want 0", got)
	}
	eventually(t, 10*time.Second, "the access-log line of the request", func() bool { return len(g.AccessLog()) == 1 })
	eventually(t, 10*time.Second, "INCR d6-late from on_log to reach the server", func() bool {
		v, err := rdb.Get(t.Context(), "d6-late").Result()
		return err == nil && v == "1"
	})
}

// TestD6HTTPCallCallbackCrash: when the plugin traps inside the callout
// callback that was to resume the paused request, the request does not
// hang: FAIL_CLOSE answers 503 wasm_fail_stream without an upstream
// request, FAIL_OPEN skips the plugin and the request goes on.
func TestD6HTTPCallCallbackCrash(t *testing.T) {
	for _, c := range []struct {
		strategy string
		status   int
	}{
		{"FAIL_CLOSE", http.StatusServiceUnavailable},
		{"FAIL_OPEN", http.StatusOK},
	} {
		t.Run(c.strategy, func(t *testing.T) {
			up := newUpstream(t)
			callee := newUpstream(t)
			cfg := `{"on": {"request_headers": {"steps": [
			  {"op": "http_call", "cluster": "callee", "timeout_ms": 10000,
			   "headers": [[":method", "GET"], [":path", "/called"], [":authority", "callee.local"]],
			   "then": [{"op": "add_header", "key": "x-before-crash", "value": "1"},
			            {"op": "panic", "message": "d6: deliberate panic in the callout callback"},
			            {"op": "continue_stream"}]}
			], "action": "stop_all_watermark"}}}`
			g := startGateway(t, clusterAndRoute(up)+d6ClusterDoc("callee", callee.Addr())+
				d12ProbeDoc("d6crash", cfg, "  failStrategy: "+c.strategy+"\n"))
			client := &http.Client{Timeout: 20 * time.Second}
			resp, err := client.Get(g.URL + "/crash")
			if err != nil {
				t.Fatalf("the request paused on the crashed callback did not finish: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			eventually(t, 10*time.Second, "the access-log line", func() bool { return len(g.AccessLog()) == 1 })
			details := g.AccessLog()[0]["response_details"]
			switch c.strategy {
			case "FAIL_CLOSE":
				if n := len(up.Requests()); n != 0 {
					t.Errorf("upstream got %d requests, want none", n)
				}
				if details != "wasm_fail_stream" {
					t.Errorf("response_details %v, want wasm_fail_stream", details)
				}
			case "FAIL_OPEN":
				if n := len(up.Requests()); n != 1 {
					t.Fatalf("upstream got %d requests, want 1", n)
				}
				if details != "via_upstream" {
					t.Errorf("response_details %v, want via_upstream", details)
				}
			}
			if n, _ := d12Metric(t, g, "sluice_wasm_crashes_total", "plugin", "d6crash"); n != 1 {
				t.Errorf("sluice_wasm_crashes_total = %v, want 1", n)
			}
		})
	}
}
