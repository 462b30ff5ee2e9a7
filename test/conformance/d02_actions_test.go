package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Checklist D.2 (StopIteration from request headers), D.3 (body Pause
// accumulation, set_buffer_bytes rules, buffer limit) and D.4 (StopAll +
// callout + continue_stream).

// probe renders a go/probe WasmPlugin; cfg is the probe's JSON
// configuration, extra goes under spec (two-space indent).
func probe(name, cfg, extra string) string {
	if !json.Valid([]byte(cfg)) {
		panic("probe " + name + ": invalid JSON configuration: " + cfg)
	}
	return plugin(name, "go/probe", json.RawMessage(cfg), extra)
}

// priority is the spec line ordering a plugin (higher runs first).
func priority(n int) string { return fmt.Sprintf("  priority: %d\n", n) }

// countLog counts occurrences of s in the gateway log.
func (g *gw) countLog(s string) int { return strings.Count(g.logs.String(), s) }

// waitLog waits until s occurs at least n times in the gateway log.
func (g *gw) waitLog(s string, n int) {
	g.t.Helper()
	eventually(g.t, 30*time.Second, fmt.Sprintf("%d× %q in the gateway log", n, s), func() bool { return g.countLog(s) >= n })
}

// rawStream is an HTTP/1.1 request written by hand on its own connection,
// so each body chunk goes out (and arrives) on its own.
type rawStream struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// openChunked sends the request line and headers of a chunked request.
// headers are name/value pairs; "host" sets the Host header.
func (g *gw) openChunked(method, path string, headers ...string) *rawStream {
	g.t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.URL, "http://"), 10*time.Second)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	host := "conformance.test"
	var b strings.Builder
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "host") {
			host = headers[i+1]
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n", method, path, host, b.String())
	if _, err := io.WriteString(conn, head); err != nil {
		g.t.Fatal(err)
	}
	return &rawStream{t: g.t, conn: conn, br: bufio.NewReader(conn)}
}

// chunk sends one body chunk.
func (r *rawStream) chunk(s string) {
	r.t.Helper()
	if _, err := fmt.Fprintf(r.conn, "%x\r\n%s\r\n", len(s), s); err != nil {
		r.t.Fatal(err)
	}
}

// end sends the last chunk with optional trailers (name/value pairs).
func (r *rawStream) end(trailers ...string) {
	r.t.Helper()
	var b strings.Builder
	b.WriteString("0\r\n")
	for i := 0; i+1 < len(trailers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", trailers[i], trailers[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(r.conn, b.String()); err != nil {
		r.t.Fatal(err)
	}
}

// response reads the response (body and trailers included).
func (r *rawStream) response() (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read response body: %v", err)
	}
	return resp, string(b)
}

// wantHeaders checks header values on a response or request.
func wantHeaders(t *testing.T, where string, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := h[http.CanonicalHeaderKey(k)]; !ok || len(got) != 1 || got[0] != v {
			t.Errorf("%s %s = %q, want [%q]", where, k, got, v)
		}
	}
}

// TestD2StopIterationKeepsFeedingBody: request headers answered with 1
// (StopIteration) stay at the plugin while its body callbacks keep running;
// 0 from the last body callback releases headers and the whole body
// together (the next plugin sees the headers only then, and gets the body
// in one end-of-stream call); header edits made in the body phase reach the
// upstream.
func TestD2StopIterationKeepsFeedingBody(t *testing.T) {
	u := newUpstream(t)
	holder := `{"name": "holder", "on": {
	  "request_headers": {"steps": [], "action": "stop_iteration"},
	  "request_body": {"steps": [
	    {"op": "callback_arg", "arg": "body_size", "to": "log:chunk"},
	    {"op": "get_header", "key": ":path", "to": "var:path_in_body", "when": "first"},
	    {"op": "set_header", "key": "x-body-phase", "value": "set-in-body", "when": "eos", "status": "var:edit"},
	    {"op": "get_var", "name": "path_in_body", "to": "header:x-path-in-body", "when": "eos"}
	  ], "action": "pause_until_eos"},
	  "response_headers": [{"op": "get_var", "name": "edit", "to": "header:x-holder-edit"}]}}`
	observer := `{"name": "observer", "on": {
	  "request_headers": [{"op": "get_header", "key": "x-body-phase", "to": "header:x-observer-saw", "status": "header:x-observer-status"}],
	  "request_body": [
	    {"op": "callback_arg", "arg": "body_size", "to": "var:first_size", "when": "first"},
	    {"op": "callback_arg", "arg": "eos", "to": "var:first_eos", "when": "first"}],
	  "response_headers": [
	    {"op": "get_var", "name": "first_size", "to": "header:x-observer-first-size"},
	    {"op": "get_var", "name": "first_eos", "to": "header:x-observer-first-eos"}]}}`
	g := startGateway(t, clusterAndRoute(u)+probe("holder", holder, priority(100))+probe("observer", observer, priority(50)))

	check := func(t *testing.T, resp *http.Response, body, path, sent string) {
		t.Helper()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		r := lastRequest(t, u)
		if r.Path != path || r.Body != sent {
			t.Fatalf("upstream got %s %q, want %s %q", r.Path, r.Body, path, sent)
		}
		wantHeaders(t, "upstream", r.Header, map[string]string{
			"x-body-phase":      "set-in-body", // edit from the body phase
			"x-path-in-body":    path,          // headers readable in the body phase
			"x-observer-saw":    "set-in-body", // the next plugin got the headers after the edit
			"x-observer-status": "0",
		})
		wantHeaders(t, "response", resp.Header, map[string]string{
			"x-holder-edit":         "0",
			"x-observer-first-size": fmt.Sprint(len(sent)),
			"x-observer-first-eos":  "true",
		})
	}

	t.Run("one chunk", func(t *testing.T) {
		resp, body := g.Do("POST", "/d2/one", "hello world")
		check(t, resp, body, "/d2/one", "hello world")
	})
	t.Run("three chunks", func(t *testing.T) {
		const mark = "probe[holder]: chunk="
		before := g.countLog(mark)
		s := g.openChunked("POST", "/d2/three")
		for i, c := range []string{"abc", "defg", "hi"} {
			s.chunk(c)
			g.waitLog(mark, before+i+1) // the holder saw this chunk before the next one is sent
		}
		if n := len(u.Requests()); n != 1 {
			t.Fatalf("upstream got %d requests while the holder kept the headers, want only the earlier one", n)
		}
		s.end()
		resp, body := s.response()
		check(t, resp, body, "/d2/three", "abcdefghi")
		if n := g.countLog(mark) - before; n < 3 {
			t.Fatalf("holder body callbacks = %d, want ≥ 3 (one per chunk)", n)
		}
	})
}

// TestD3PauseAccumulatesChunks: after a body callback returned 1 (Pause),
// the next chunk is appended and the plugin is called with body_len = the
// total so far and a buffer holding every byte.
func TestD3PauseAccumulatesChunks(t *testing.T) {
	u := newUpstream(t)
	acc := `{"name": "acc", "on": {
	  "request_body": {"steps": [
	    {"op": "callback_arg", "arg": "body_size", "to": "log:chunk"},
	    {"op": "callback_arg", "arg": "body_size", "to": "var:size1", "when": "call:1"},
	    {"op": "get_body", "to": "var:buf1", "when": "call:1"},
	    {"op": "callback_arg", "arg": "body_size", "to": "var:size2", "when": "call:2"},
	    {"op": "get_body", "to": "var:buf2", "when": "call:2"},
	    {"op": "get_buffer_status", "to": "var:status2", "when": "call:2"},
	    {"op": "callback_arg", "arg": "body_size", "to": "var:size_eos", "when": "eos"},
	    {"op": "get_body", "to": "var:buf_eos", "when": "eos"}
	  ], "action": "pause_until_eos"},
	  "response_headers": [
	    {"op": "get_var", "name": "size1", "to": "header:x-size1"},
	    {"op": "get_var", "name": "buf1", "to": "header:x-buf1"},
	    {"op": "get_var", "name": "size2", "to": "header:x-size2"},
	    {"op": "get_var", "name": "buf2", "to": "header:x-buf2"},
	    {"op": "get_var", "name": "status2", "to": "header:x-buffer-status2"},
	    {"op": "get_var", "name": "size_eos", "to": "header:x-size-eos"},
	    {"op": "get_var", "name": "buf_eos", "to": "header:x-buf-eos"}]}}`
	g := startGateway(t, clusterAndRoute(u)+probe("acc", acc, ""))

	const mark = "probe[acc]: chunk="
	s := g.openChunked("POST", "/d3/acc")
	s.chunk("aaaa")
	g.waitLog(mark, 1)
	s.chunk("bbbbbb")
	g.waitLog(mark, 2)
	s.chunk("cc")
	s.end()
	resp, body := s.response()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantHeaders(t, "response", resp.Header, map[string]string{
		"x-size1": "4", "x-buf1": "aaaa",
		"x-size2": "10", "x-buf2": "aaaabbbbbb", "x-buffer-status2": "10",
		"x-size-eos": "12", "x-buf-eos": "aaaabbbbbbcc",
	})
	if r := lastRequest(t, u); r.Body != "aaaabbbbbbcc" {
		t.Fatalf("upstream body %q, want every chunk once", r.Body)
	}
}

// TestD3SetBufferBytesEnvoyRules: proxy_set_buffer_bytes on a body follows
// Envoy: start 0 drops `size` bytes (clamped) and prepends, start ≥ length
// appends, any other start is BAD_ARGUMENT (2) and changes nothing; the
// SDK's replace/append/prepend are (0,max), (max,0), (0,0). Checked on the
// request body (sent upstream) and the response body (sent to the client).
func TestD3SetBufferBytesEnvoyRules(t *testing.T) {
	u := newUpstream(t)
	u.Handle = func(w http.ResponseWriter, _ *http.Request, _ []byte) { _, _ = io.WriteString(w, "upstream") }
	type edit struct {
		op, args string
		want     string // body after the edit
		status   string
	}
	reqEdits := []edit{
		{"set_body", `"start": 0, "size": 5, "value": "HOWDY"`, "HOWDY world", "0"},
		{"set_body", `"start": 11, "size": 0, "value": "!"`, "HOWDY world!", "0"},
		{"set_body", `"start": 100, "size": 3, "value": "?"`, "HOWDY world!?", "0"},
		{"set_body", `"start": 0, "size": 0, "value": ">"`, ">HOWDY world!?", "0"},
		{"set_body", `"start": 3, "size": 0, "value": "Z"`, ">HOWDY world!?", "2"},
		{"set_body", `"start": 3, "size": 2, "value": "Z"`, ">HOWDY world!?", "2"},
		{"append_body", `"value": "+"`, ">HOWDY world!?+", "0"},
		{"prepend_body", `"value": "<"`, "<>HOWDY world!?+", "0"},
		{"set_body", `"start": 0, "size": 1000, "value": "all"`, "all", "0"},
		{"replace_body", `"value": "whole"`, "whole", "0"},
	}
	steps := func(edits []edit, m string) string {
		var out []string
		for i, e := range edits {
			out = append(out,
				fmt.Sprintf(`{"op": %q, %s, "when": "eos", "status": "header:%s:x-s%d"}`, e.op, e.args, m, i+1),
				fmt.Sprintf(`{"op": "get_body", "when": "eos", "to": "header:%s:x-b%d"}`, m, i+1))
		}
		return strings.Join(out, ",\n")
	}
	respEdits := []edit{
		{"prepend_body", `"value": "["`, "[upstream", "0"},
		{"set_body", `"start": 1, "size": 0, "value": "x"`, "[upstream", "2"},
		{"append_body", `"value": "]"`, "[upstream]", "0"},
		{"set_body", `"start": 0, "size": 1, "value": "{"`, "{upstream]", "0"},
	}
	cfg := fmt.Sprintf(`{"name": "edit", "on": {
	  "request_headers": {"steps": [], "action": "stop_iteration"},
	  "request_body": {"steps": [%s], "action": "pause_until_eos"},
	  "response_headers": {"steps": [], "action": "stop_iteration"},
	  "response_body": {"steps": [%s], "action": "pause_until_eos"}}}`,
		steps(reqEdits, "request_headers"), steps(respEdits, "response_headers"))
	g := startGateway(t, clusterAndRoute(u)+probe("edit", cfg, ""))

	resp, body := g.Do("POST", "/d3/edit", "hello world")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := lastRequest(t, u)
	for i, e := range reqEdits {
		wantHeaders(t, fmt.Sprintf("request edit %d %s(%s):", i+1, e.op, e.args), r.Header,
			map[string]string{fmt.Sprintf("x-s%d", i+1): e.status, fmt.Sprintf("x-b%d", i+1): e.want})
	}
	if want := reqEdits[len(reqEdits)-1].want; r.Body != want {
		t.Errorf("upstream body %q, want %q", r.Body, want)
	}
	for i, e := range respEdits {
		wantHeaders(t, fmt.Sprintf("response edit %d %s(%s):", i+1, e.op, e.args), resp.Header,
			map[string]string{fmt.Sprintf("x-s%d", i+1): e.status, fmt.Sprintf("x-b%d", i+1): e.want})
	}
	if want := respEdits[len(respEdits)-1].want; body != want {
		t.Errorf("client body %q, want %q", body, want)
	}
}

// TestD3BufferLimit: a body buffered past the stream's decoder buffer limit
// (lowered by the plugin with set_decoder_buffer_limit) is answered 413 and
// never reaches the upstream — whether the plugin pauses body callbacks
// (Pause accumulation) or stops everything from the headers (StopAll:
// host-side buffering); under the limit the request goes through.
func TestD3BufferLimit(t *testing.T) {
	u := newUpstream(t)
	pause := `{"name": "pause", "on": {
	  "request_headers": [{"op": "set_property", "path": "set_decoder_buffer_limit", "value": "16", "status": "log:limit_status"}],
	  "request_body": {"steps": [{"op": "callback_arg", "arg": "body_size", "to": "log:chunk"}], "action": "pause_until_eos"}}}`
	stopAll := `{"name": "stopall", "on": {
	  "request_headers": {"steps": [{"op": "set_property", "path": "set_decoder_buffer_limit", "value": "16"}], "action": "stop_all_buffer"}}}`
	g := startGateway(t, clusterAndRoute(u)+probe("pause", pause, ""))
	gAll := startGateway(t, clusterAndRoute(u)+probe("stopall", stopAll, ""))

	t.Run("pause under the limit", func(t *testing.T) {
		resp, body := g.Do("POST", "/d3/small", "0123456789abcdef")
		if resp.StatusCode != 200 || lastRequest(t, u).Body != "0123456789abcdef" {
			t.Fatalf("status %d %s, want 200 and the body upstream", resp.StatusCode, body)
		}
	})
	t.Run("pause over the limit", func(t *testing.T) {
		before := len(u.Requests())
		const mark = "probe[pause]: chunk="
		n := g.countLog(mark)
		s := g.openChunked("POST", "/d3/big")
		s.chunk("0123456789")
		g.waitLog(mark, n+1)
		s.chunk("0123456789") // 20 bytes buffered > 16
		resp, body := s.response()
		if resp.StatusCode != 413 {
			t.Fatalf("status %d %s, want 413", resp.StatusCode, body)
		}
		if got := len(u.Requests()); got != before {
			t.Fatalf("the upstream got the over-limit request")
		}
		if g.countLog("probe[pause]: limit_status=0") == 0 {
			t.Fatal("set_property(set_decoder_buffer_limit) did not return OK")
		}
	})
	t.Run("stop all over the limit", func(t *testing.T) {
		before := len(u.Requests())
		resp, body := gAll.Do("POST", "/d3/big", strings.Repeat("x", 20))
		if resp.StatusCode != 413 {
			t.Fatalf("status %d %s, want 413", resp.StatusCode, body)
		}
		if got := len(u.Requests()); got != before {
			t.Fatalf("the upstream got the over-limit request")
		}
	})
}

// TestD4StopAllCalloutResume: request headers return 4
// (StopAllIterationAndWatermark) and make an HTTP callout; the body that
// arrives meanwhile is held by the host (the plugin's body callback does not
// run), and after continue_stream from the callout callback it is delivered
// to the same plugin, then to the upstream.
func TestD4StopAllCalloutResume(t *testing.T) {
	u := newUpstream(t)
	callee := newUpstream(t)
	// Each callout waits for a token, so a test decides when it returns.
	tokens := make(chan struct{}, 4)
	callee.Handle = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-tokens:
		case <-time.After(30 * time.Second):
		}
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "called")
	}
	_, port, _ := net.SplitHostPort(callee.Addr())
	cfg := fmt.Sprintf(`{"name": "waiter", "on": {
	  "request_headers": {"steps": [
	    {"op": "http_call", "cluster": "outbound|%s||callee",
	     "headers": [[":method", "GET"], [":path", "/callout"], [":authority", "callee"]],
	     "timeout_ms": 40000, "status": "var:dispatch", "then": [
	       {"op": "set_var", "name": "called", "value": "yes"},
	       {"op": "get_header", "map": "http_call_response_headers", "key": ":status", "to": "var:call_status"},
	       {"op": "continue_stream"}]}
	  ], "action": "stop_all_watermark"},
	  "request_body": [
	    {"op": "get_var", "name": "called", "to": "var:called_at_first_body", "status": "var:called_status", "when": "first"},
	    {"op": "callback_arg", "arg": "body_size", "to": "var:eos_size", "when": "eos"},
	    {"op": "get_body", "to": "var:eos_body", "when": "eos"}],
	  "response_headers": [
	    {"op": "get_var", "name": "dispatch", "to": "header:x-dispatch"},
	    {"op": "get_var", "name": "call_status", "to": "header:x-call-status"},
	    {"op": "get_var", "name": "called_status", "to": "header:x-called-status"},
	    {"op": "get_var", "name": "called_at_first_body", "to": "header:x-called-at-first-body"},
	    {"op": "get_var", "name": "eos_size", "to": "header:x-eos-size"},
	    {"op": "get_var", "name": "eos_body", "to": "header:x-eos-body"}]}}`, port)
	g := startGateway(t, clusterAndRoute(u)+clusterDoc("callee", callee, 0)+probe("waiter", cfg, ""))

	check := func(t *testing.T, resp *http.Response, body, sent string) {
		t.Helper()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		wantHeaders(t, "response", resp.Header, map[string]string{
			"x-dispatch":             "0",
			"x-call-status":          "201",
			"x-called-status":        "0", // the callout callback ran before the first body callback
			"x-called-at-first-body": "yes",
			"x-eos-size":             fmt.Sprint(len(sent)),
			"x-eos-body":             sent,
		})
		if r := lastRequest(t, u); r.Body != sent {
			t.Fatalf("upstream body %q, want %q", r.Body, sent)
		}
	}

	t.Run("body buffered before the callout returns", func(t *testing.T) {
		// A small body of known length is read with the headers, so it is
		// certainly held at the host while the plugin waits.
		tokens <- struct{}{}
		resp, body := g.Do("POST", "/d4/small", "the request body")
		check(t, resp, body, "the request body")
		if n := len(callee.Requests()); n != 1 {
			t.Fatalf("callee got %d requests, want 1", n)
		}
	})
	t.Run("chunked body sent while the callout is pending", func(t *testing.T) {
		calls := len(callee.Requests())
		s := g.openChunked("POST", "/d4/chunked")
		eventually(t, 30*time.Second, "the callout to reach the callee", func() bool { return len(callee.Requests()) == calls+1 })
		s.chunk("part one, ")
		s.chunk("part two")
		s.end()
		tokens <- struct{}{}
		resp, body := s.response()
		check(t, resp, body, "part one, part two")
	})
}
