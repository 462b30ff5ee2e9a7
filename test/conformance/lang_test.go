package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Plugins built by other toolchains (C, Rust, AssemblyScript) through the
// real gateway; test/plugins/README.md describes each one.

const rustAppendix = "\n-- appended by rust/addheader\n"

// langUpstreamJSON is the default upstream's answer for a request.
func langUpstreamJSON(method, path, body string) string {
	b, _ := json.Marshal(map[string]string{"method": method, "path": path, "body": body})
	return string(b) + "\n"
}

// langLogHas reports whether one gateway log line contains every part.
func langLogHas(logs string, parts ...string) bool {
	for _, l := range strings.Split(logs, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestLangCAddHeader: the C plugin (clang + wasi-libc reactor, ABI 0.2.1,
// only a few callbacks exported) adds x-c-path to requests, logs through
// proxy_log, and answers /c/deny locally with 403 and its own header and
// details, without reaching the upstream.
func TestLangCAddHeader(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, clusterAndRoute(u)+plugin("c", "c/addheader", map[string]any{}, ""))

	resp, body := g.Do("POST", "/c/hello?q=1", "request body")
	r, ok := badLastSeen(u, "/c/hello?q=1")
	if resp.StatusCode != 200 || !ok {
		t.Fatalf("POST /c/hello = %d %q (upstream saw it: %v)", resp.StatusCode, body, ok)
	}
	if got := r.Header.Values("x-c-path"); len(got) != 1 || got[0] != "/c/hello?q=1" {
		t.Errorf("upstream x-c-path = %q, want [/c/hello?q=1]", got)
	}
	if r.Body != "request body" {
		t.Errorf("upstream body = %q, want the request body unchanged", r.Body)
	}
	if want := langUpstreamJSON("POST", "/c/hello?q=1", "request body"); body != want || resp.Header.Get("x-upstream") != "yes" {
		t.Errorf("response = %q (x-upstream %q), want the upstream's %q: the plugin has no response callbacks", body, resp.Header.Get("x-upstream"), want)
	}
	if !langLogHas(g.logs.String(), "c/addheader: path=/c/hello?q=1", "plugin=c") {
		t.Errorf("no plugin log line 'c/addheader: path=/c/hello?q=1'")
	}

	resp, body = g.Do("GET", "/c/deny", "")
	if resp.StatusCode != 403 || body != "denied by c/addheader\n" || resp.Header.Get("x-c-local") != "1" {
		t.Errorf("GET /c/deny = %d %q x-c-local=%q, want 403 %q with x-c-local: 1", resp.StatusCode, body, resp.Header.Get("x-c-local"), "denied by c/addheader\n")
	}
	if _, ok := badLastSeen(u, "/c/deny"); ok {
		t.Errorf("upstream saw /c/deny, which the plugin answered locally")
	}
	if langLogHas(g.logs.String(), "c/addheader: send_local_response failed") {
		t.Errorf("the plugin's send_local_response failed")
	}
	eventually(t, 10*time.Second, "the access log line of /c/deny with the plugin's details", func() bool {
		for _, l := range g.AccessLog() {
			if l["path"] == "/c/deny" {
				return l["response_details"] == "c_addheader_denied" && fmt.Sprint(l["status"]) == "403"
			}
		}
		return false
	})
}

// TestLangRustAddHeader: the Rust plugin (wasm32-unknown-unknown, no
// _initialize, no _start, no WASI) adds x-rust-path, removes the response
// content-length and appends a line to the end of the response body, also
// when the upstream sends the body in several chunks.
func TestLangRustAddHeader(t *testing.T) {
	u := newUpstream(t)
	chunk := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	u.Handle = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != "/rust/chunked" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Upstream", "yes")
			_, _ = w.Write([]byte(langUpstreamJSON(r.Method, r.URL.RequestURI(), "")))
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		for range 3 {
			_, _ = w.Write([]byte(chunk))
			w.(http.Flusher).Flush()
		}
	}
	g := startGateway(t, clusterAndRoute(u)+plugin("rust", "rust/addheader", map[string]any{}, ""))

	resp, body := g.Do("GET", "/rust/x", "")
	r, ok := badLastSeen(u, "/rust/x")
	if resp.StatusCode != 200 || !ok {
		t.Fatalf("GET /rust/x = %d %q (upstream saw it: %v)", resp.StatusCode, body, ok)
	}
	if got := r.Header.Values("x-rust-path"); len(got) != 1 || got[0] != "/rust/x" {
		t.Errorf("upstream x-rust-path = %q, want [/rust/x]", got)
	}
	if want := langUpstreamJSON("GET", "/rust/x", "") + rustAppendix; body != want {
		t.Errorf("response body = %q, want %q", body, want)
	}
	if resp.ContentLength != -1 && resp.ContentLength != int64(len(body)) {
		t.Errorf("response content-length %d does not match the edited body (%d bytes)", resp.ContentLength, len(body))
	}
	if !langLogHas(g.logs.String(), "rust/addheader: path=/rust/x", "plugin=rust") {
		t.Errorf("no plugin log line 'rust/addheader: path=/rust/x'")
	}

	resp, body = g.Do("GET", "/rust/chunked", "")
	if want := strings.Repeat(chunk, 3) + rustAppendix; resp.StatusCode != 200 || body != want {
		t.Errorf("GET /rust/chunked = %d, %d bytes ending %q; want %d bytes ending with the appendix once",
			resp.StatusCode, len(body), body[max(0, len(body)-40):], len(want))
	}
}

// TestLangAssemblyScriptAddHeader: the AssemblyScript plugin (start
// section, malloc instead of proxy_on_memory_allocate, wasi_unstable
// imports, ABI 0.2.0, root context found through plugin_root_id) adds
// x-as-path to requests and x-as-config (its raw configuration) to
// responses; pluginName sets the root id it registers under.
func TestLangAssemblyScriptAddHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   map[string]any
		extra string
	}{
		{"root id is the plugin name", map[string]any{"greeting": "hi", "n": 1}, ""},
		{"root id from pluginName", map[string]any{"other": []any{"a", "b"}}, "  pluginName: custom-root\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			g := startGateway(t, clusterAndRoute(u)+plugin("as", "as/addheader", tc.cfg, tc.extra))
			resp, body := g.Do("GET", "/as/x?y=2", "")
			r, ok := badLastSeen(u, "/as/x?y=2")
			if resp.StatusCode != 200 || !ok {
				t.Fatalf("GET /as/x = %d %q (upstream saw it: %v)", resp.StatusCode, body, ok)
			}
			if got := r.Header.Values("x-as-path"); len(got) != 1 || got[0] != "/as/x?y=2" {
				t.Errorf("upstream x-as-path = %q, want [/as/x?y=2]", got)
			}
			want := badJSON(tc.cfg)
			if got := resp.Header.Values("x-as-config"); len(got) != 1 || got[0] != want {
				t.Errorf("response x-as-config = %q, want [%s]", got, want)
			}
			if want := langUpstreamJSON("GET", "/as/x?y=2", ""); body != want {
				t.Errorf("response body = %q, want the upstream's %q", body, want)
			}
			if !langLogHas(g.logs.String(), "as/addheader: path=/as/x?y=2", "plugin=as") {
				t.Errorf("no plugin log line 'as/addheader: path=/as/x?y=2'")
			}
		})
	}
}

// TestLangMixedChain: C, Rust, AssemblyScript and Go (probe) plugins in
// one chain each apply their edit to the same request and response, and
// a local reply from the C plugin still passes the response callbacks of
// the plugins before it.
func TestLangMixedChain(t *testing.T) {
	u := newUpstream(t)
	probe := map[string]any{"on": map[string]any{
		"request_headers":  []any{map[string]any{"op": "set_header", "key": "x-probe", "value": "1"}},
		"response_headers": []any{map[string]any{"op": "set_header", "key": "x-probe-saw", "value": "1"}},
	}}
	g := startGateway(t, clusterAndRoute(u)+
		plugin("probe", "go/probe", probe, "  priority: 40\n")+
		plugin("as", "as/addheader", map[string]any{"k": "v"}, "  priority: 30\n")+
		plugin("c", "c/addheader", map[string]any{}, "  priority: 20\n")+
		plugin("rust", "rust/addheader", map[string]any{}, "  priority: 10\n"))

	resp, body := g.Do("GET", "/mixed", "")
	r, ok := badLastSeen(u, "/mixed")
	if resp.StatusCode != 200 || !ok {
		t.Fatalf("GET /mixed = %d %q (upstream saw it: %v)", resp.StatusCode, body, ok)
	}
	for _, h := range []string{"x-probe", "x-as-path", "x-c-path", "x-rust-path"} {
		want := "/mixed"
		if h == "x-probe" {
			want = "1"
		}
		if got := r.Header.Get(h); got != want {
			t.Errorf("upstream %s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("x-as-config") != `{"k":"v"}` || resp.Header.Get("x-probe-saw") != "1" {
		t.Errorf("response headers %v, want x-as-config and x-probe-saw", resp.Header)
	}
	if want := langUpstreamJSON("GET", "/mixed", "") + rustAppendix; body != want {
		t.Errorf("response body = %q, want %q", body, want)
	}

	resp, body = g.Do("GET", "/c/deny", "")
	if resp.StatusCode != 403 || body != "denied by c/addheader\n" {
		t.Fatalf("GET /c/deny = %d %q, want the C plugin's 403", resp.StatusCode, body)
	}
	if resp.Header.Get("x-as-config") != `{"k":"v"}` || resp.Header.Get("x-probe-saw") != "1" {
		t.Errorf("local reply headers %v: the plugins before the C plugin must see the local reply", resp.Header)
	}
	if _, ok := badLastSeen(u, "/c/deny"); ok {
		t.Errorf("upstream saw /c/deny")
	}
}
