package conformance

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
)

// D.14: a guest that panics (no recovery in an SDK-only plugin) or calls
// proc_exit kills its instance. The stream pinned to it follows the
// plugin's fail strategy — FAIL_OPEN skips the plugin, FAIL_CLOSE answers
// 503 wasm_fail_stream — the crash is counted, and a replacement instance
// serves later requests after a back-off of at least one second.

func TestD14CrashKillsInstanceAppliesFailStrategyAndRecovers(t *testing.T) {
	panicStep := map[string]any{"op": "panic", "message": "d14 deliberate panic", "when": "stream:2"}
	exitStep := map[string]any{"op": "exit", "code": 3, "when": "stream:2"}
	for _, tc := range []struct {
		name     string
		phase    string // callback that crashes
		crash    map[string]any
		failOpen bool
		stderr   string // expected in the gateway log from the guest's stderr
	}{
		{"panic/FAIL_OPEN", "request_headers", panicStep, true, "d14 deliberate panic"},
		{"panic/FAIL_CLOSE", "request_headers", panicStep, false, "d14 deliberate panic"},
		{"proc_exit/FAIL_OPEN", "request_headers", exitStep, true, ""},
		{"proc_exit/FAIL_CLOSE", "request_headers", exitStep, false, ""},
		{"panic in response_headers/FAIL_OPEN", "response_headers", panicStep, true, "d14 deliberate panic"},
		{"panic in response_headers/FAIL_CLOSE", "response_headers", panicStep, false, "d14 deliberate panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			// The second stream of every instance crashes it; the plugin's
			// effect is a response header set after the crash point.
			on := map[string]any{"response_headers": []any{}}
			on[tc.phase] = []any{tc.crash}
			on["response_headers"] = append(on["response_headers"].([]any), map[string]any{"op": "set_header", "key": "x-d14-effect", "value": "yes"})
			cfg := map[string]any{"name": "crash", "on": on}
			strategy := "FAIL_CLOSE"
			if tc.failOpen {
				strategy = "FAIL_OPEN"
			}
			// One instance, so the crash and the recovery are deterministic.
			g := startGateway(t, clusterAndRoute(u)+plugin("crash", "go/probe", cfg, "  failStrategy: "+strategy+"\n"),
				func(o *app.Options) { o.PoolSize = 1 })

			resp, _ := g.Do("GET", "/d14/first", "")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-D14-Effect") != "yes" {
				t.Fatalf("first request: %d, x-d14-effect %q; want 200 with the plugin's header", resp.StatusCode, resp.Header.Get("X-D14-Effect"))
			}

			crashAt := time.Now()
			resp, body := g.Do("GET", "/d14/crash", "")
			checkFailed := func(resp *http.Response, body, what string) {
				t.Helper()
				if resp.Header.Get("X-D14-Effect") != "" {
					t.Fatalf("%s: the failed plugin's response header is present", what)
				}
				if tc.failOpen {
					if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"path":"`) {
						t.Fatalf("%s: %d %q; FAIL_OPEN wants the upstream's answer without the plugin", what, resp.StatusCode, body)
					}
					return
				}
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "wasm_fail_stream" {
					t.Fatalf("%s: %d %q; FAIL_CLOSE wants 503 with code wasm_fail_stream", what, resp.StatusCode, body)
				}
			}
			checkFailed(resp, body, "crashing request")
			upstreamSaw := func(path string) bool {
				for _, r := range u.Requests() {
					if r.Path == path {
						return true
					}
				}
				return false
			}
			// A crash on the request path stops the request (FAIL_CLOSE); on
			// the response path it has already been forwarded.
			if got, want := upstreamSaw("/d14/crash"), tc.failOpen || tc.phase != "request_headers"; got != want {
				t.Errorf("upstream received the crashing request: %v, want %v", got, want)
			}
			if v, _ := dxMetric(t, g, "sluice_wasm_crashes_total", "plugin", "crash"); v != 1 {
				t.Errorf("sluice_wasm_crashes_total{plugin=crash} = %v, want 1", v)
			}
			if v, _ := dxMetric(t, g, "sluice_wasm_instances", "plugin", "crash"); v != 0 {
				t.Errorf("sluice_wasm_instances{plugin=crash} = %v right after the crash, want 0", v)
			}

			// Until the replacement is up the plugin keeps failing per its
			// strategy; then its effect is back, no earlier than 1 s after
			// the crash.
			var recovered time.Time
			deadline := time.Now().Add(20 * time.Second)
			for n := 0; ; n++ {
				if time.Now().After(deadline) {
					t.Fatalf("no replacement instance served a request within 20s of the crash")
				}
				resp, body := g.Do("GET", "/d14/after", "")
				if resp.Header.Get("X-D14-Effect") == "yes" {
					recovered = time.Now()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("recovered request: status %d", resp.StatusCode)
					}
					break
				}
				checkFailed(resp, body, "request before the replacement")
				time.Sleep(25 * time.Millisecond)
			}
			if d := recovered.Sub(crashAt); d < time.Second {
				t.Errorf("the plugin served again %s after the crash, want ≥ 1s back-off", d)
			}
			if v, _ := dxMetric(t, g, "sluice_wasm_instances", "plugin", "crash"); v != 1 {
				t.Errorf("sluice_wasm_instances{plugin=crash} = %v after recovery, want 1", v)
			}
			if v, _ := dxMetric(t, g, "sluice_wasm_crashes_total", "plugin", "crash"); v != 1 {
				t.Errorf("sluice_wasm_crashes_total{plugin=crash} = %v after recovery, want 1", v)
			}

			// The access log and the gateway log tell what happened.
			var crashLine map[string]any
			eventually(t, 5*time.Second, "the crashing request's access-log line", func() bool {
				for _, l := range g.AccessLog() {
					if l["path"] == "/d14/crash" {
						crashLine = l
						return true
					}
				}
				return false
			})
			if !tc.failOpen {
				if crashLine["response_details"] != "wasm_fail_stream" || crashLine["status"] != float64(503) {
					t.Errorf("access log of the crashing request: status %v, response_details %v; want 503 wasm_fail_stream", crashLine["status"], crashLine["response_details"])
				}
			}
			reqID, _ := crashLine["request_id"].(string)
			var failedLine, stderrSeen, replaced bool
			for _, l := range dxLogRecords(g) {
				switch {
				case l["msg"] == "plugin failed on a request" && l["plugin"] == "crash" && l["phase"] == tc.phase && l["request_id"] == reqID && l["fail_strategy"] == strategy:
					failedLine = true
				case tc.stderr != "" && strings.Contains(l["msg"], tc.stderr) && l["plugin"] == "crash":
					stderrSeen = true
				case l["msg"] == "plugin instance replaced after a crash" && l["plugin"] == "crash":
					replaced = true
				}
			}
			if !failedLine {
				t.Errorf("no log line \"plugin failed on a request\" with plugin, phase, request id %s and fail strategy", reqID)
			}
			if tc.stderr != "" && !stderrSeen {
				t.Errorf("the guest's panic message %q (stderr) is not in the gateway log", tc.stderr)
			}
			if !replaced {
				t.Errorf("no log line about the replacement instance")
			}
		})
	}
}

// Every stream pinned to the instance that crashed follows the fail
// strategy, not only the one that crashed it: a streamed response in flight
// goes on without the plugin (FAIL_OPEN) or is reset, since its headers are
// already out (FAIL_CLOSE).
func TestD14CrashFailsOtherStreamsPinnedToTheInstance(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		strategy := map[bool]string{true: "FAIL_OPEN", false: "FAIL_CLOSE"}[failOpen]
		t.Run(strategy, func(t *testing.T) {
			u := newDXSSE(t)
			cfg := map[string]any{"name": "crash", "on": map[string]any{
				"request_headers": []any{map[string]any{"op": "panic", "message": "d14 deliberate panic", "when": "stream:2"}},
				"response_body":   []any{map[string]any{"op": "append_body", "value": "[plugin]"}},
			}}
			g := startGateway(t, clusterAndRoute(u.upstream)+plugin("crash", "go/probe", cfg, "  failStrategy: "+strategy+"\n"),
				func(o *app.Options) { o.PoolSize = 1 })

			s := dxOpenStream(t, g, "/stream/pinned") // stream 1 of the only instance
			u.send(t, "one")
			s.waitFor(t, "data: one\n\n[plugin]")

			resp, _ := g.Do("GET", "/plain/crash", "") // stream 2: crashes the instance
			if want := map[bool]int{true: 200, false: 503}[failOpen]; resp.StatusCode != want {
				t.Fatalf("crashing request: status %d, want %d", resp.StatusCode, want)
			}

			// The stream still pinned to the dead instance.
			if failOpen {
				u.send(t, "two")
				s.waitFor(t, "data: two\n\n")
				close(u.next)
				if err := s.waitEnd(t); err != io.EOF {
					t.Fatalf("FAIL_OPEN stream ended with %v, want a complete response", err)
				}
				if got := s.String(); got != "data: one\n\n[plugin]data: two\n\n" {
					t.Errorf("FAIL_OPEN stream body %q: after the crash the plugin must be skipped", got)
				}
				return
			}
			// FAIL_CLOSE: the response started, so the stream is reset as
			// soon as it next needs the plugin.
			select {
			case u.next <- "two":
			case <-s.done:
			case <-time.After(10 * time.Second):
				t.Fatal("the FAIL_CLOSE stream neither took another chunk nor ended")
			}
			err := s.waitEnd(t)
			if err == io.EOF || err == nil {
				t.Errorf("FAIL_CLOSE stream ended cleanly (%v), want a reset", err)
			}
			t.Logf("FAIL_CLOSE stream pinned to the crashed instance ended with: %v", err)
			if got := s.String(); strings.Contains(got, "two") {
				t.Errorf("FAIL_CLOSE stream body %q: data passed after the plugin failed", got)
			}
		})
	}
}
