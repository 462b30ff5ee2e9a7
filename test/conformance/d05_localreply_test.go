package conformance

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Checklist D.5: proxy_send_local_response from request headers, from the
// request body and from an HTTP callout callback.

// TestD5LocalReply runs a chain outer (priority 300) → replier (200) →
// late (100). The replier answers locally (401, body, an extra header,
// details "probe denied") and then tries a second reply. Proved for each
// place the reply is made from:
//   - no request reaches the upstream;
//   - the client gets the first reply; the second call returned
//     BAD_ARGUMENT (2) and changed nothing;
//   - the reply runs through the response callbacks of the plugins that saw
//     the request (the replier itself and outer add headers), and not of a
//     plugin that did not (late, when the reply came before it);
//   - response.code_details is the details with whitespace replaced, in
//     response callbacks, in on_log and in the access log.
func TestD5LocalReply(t *testing.T) {
	reply := `
	    {"op": "send_local_response", "code": 401, "body": "denied", "details": "probe denied",
	     "headers": {"x-probe": "1"}, "status": "var:first"},
	    {"op": "send_local_response", "code": 402, "body": "again", "status": "var:second"}`
	cases := []struct {
		name     string
		replier  func(calleePort string) string
		body     string
		lateSees bool // late saw the request headers before the reply
	}{
		{
			name: "from request headers",
			replier: func(string) string {
				return `{"name": "replier", "on": {"request_headers": [` + reply + `]` + replierResponse + `}}`
			},
		},
		{
			name: "from request body",
			replier: func(string) string {
				return `{"name": "replier", "on": {"request_body": [` + reply + `]` + replierResponse + `}}`
			},
			body:     "some request body",
			lateSees: true,
		},
		{
			name: "from an http call callback",
			replier: func(port string) string {
				return fmt.Sprintf(`{"name": "replier", "on": {"request_headers": {"steps": [
				  {"op": "http_call", "cluster": "outbound|%s||callee",
				   "headers": [[":method", "GET"], [":path", "/auth"], [":authority", "callee"]],
				   "timeout_ms": 20000, "then": [%s]}], "action": "stop_all_watermark"}%s}}`, port, reply, replierResponse)
			},
		},
	}
	outer := `{"name": "outer", "on": {
	  "response_headers": [
	    {"op": "add_header", "key": "x-outer-saw", "value": "1"},
	    {"op": "get_property", "path": ["response", "code_details"], "to": "header:x-outer-details"},
	    {"op": "get_property", "path": "late_saw", "status": "header:x-late-saw-status"}],
	  "log": [{"op": "get_property", "path": ["response", "code_details"], "to": "log:log_details"}]}}`
	late := `{"name": "late", "on": {
	  "request_headers": [{"op": "set_property", "path": "late_saw", "value": "1"}],
	  "response_headers": [{"op": "add_header", "key": "x-late-saw", "value": "1"}]}}`

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUpstream(t)
			callee := newUpstream(t)
			_, port, _ := net.SplitHostPort(callee.Addr())
			g := startGateway(t, clusterAndRoute(u)+clusterDoc("callee", callee, 0)+
				probe("outer", outer, priority(300))+
				probe("replier", c.replier(port), priority(200))+
				probe("late", late, priority(100)))

			method := "GET"
			if c.body != "" {
				method = "POST"
			}
			resp, body := g.Do(method, "/d5", c.body)
			if resp.StatusCode != 401 || body != "denied" {
				t.Fatalf("got %d %q, want the first local reply 401 %q", resp.StatusCode, body, "denied")
			}
			wantHeaders(t, "response", resp.Header, map[string]string{
				"x-probe":         "1",
				"x-first-reply":   "0",
				"x-second-reply":  "2",
				"x-details":       "probe_denied",
				"x-outer-saw":     "1",
				"x-outer-details": "probe_denied",
			})
			if c.lateSees {
				wantHeaders(t, "response", resp.Header, map[string]string{"x-late-saw": "1", "x-late-saw-status": "0"})
			} else {
				if v, ok := resp.Header["X-Late-Saw"]; ok {
					t.Errorf("late never saw the request, yet its response callback ran (x-late-saw %q)", v)
				}
				wantHeaders(t, "response", resp.Header, map[string]string{"x-late-saw-status": "1"})
			}
			if n := len(u.Requests()); n != 0 {
				t.Fatalf("the upstream got %d requests, want none", n)
			}
			g.waitLog("probe[outer]: log_details=probe_denied", 1)
			var rec map[string]any
			eventually(t, 10*time.Second, "the access log line", func() bool {
				if l := g.AccessLog(); len(l) > 0 {
					rec = l[len(l)-1]
					return true
				}
				return false
			})
			if rec["status"] != float64(401) || rec["response_details"] != "probe_denied" {
				t.Fatalf("access log status %v details %v, want 401 probe_denied", rec["status"], rec["response_details"])
			}
		})
	}
}

// replierResponse reports the replier's statuses and the details it sees
// from its own response callback.
const replierResponse = `,
	  "response_headers": [
	    {"op": "get_var", "name": "first", "to": "header:x-first-reply"},
	    {"op": "get_var", "name": "second", "to": "header:x-second-reply"},
	    {"op": "get_property", "path": ["response", "code_details"], "to": "header:x-details"}]`

// TestD5LocalReplyAfterResponseStarted is the boundary of D.5 (spec §2.6):
// a local reply from the response body forces the callback's result to
// "stop" (the chunk it saw goes nowhere), and since the response headers
// already went to the client the reply itself is impossible: the stream is
// reset, so the client sees neither the upstream body nor the reply.
func TestD5LocalReplyAfterResponseStarted(t *testing.T) {
	u := newUpstream(t)
	u.Handle = func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		_, _ = io.WriteString(w, "upstream body")
	}
	cfg := `{"name": "late-reply", "on": {
	  "response_body": [{"op": "send_local_response", "code": 403, "body": "too late", "status": "log:late_reply_status"}]}}`
	g := startGateway(t, clusterAndRoute(u)+probe("late-reply", cfg, ""))
	// The response headers left the chain, so the reply is impossible and
	// the stream is reset. Whether the 200 headers were already on the wire
	// depends on flushing (non-streaming responses are not flushed early):
	// the client sees either a connection error or 200 with a cut-off body,
	// never a clean response and never the stopped chunk or the reply.
	resp, err := http.Get(g.URL + "/d5/late")
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || resp.StatusCode != 200 || strings.Contains(string(b), "upstream") || strings.Contains(string(b), "too late") {
			t.Fatalf("client got %d %q (read error %v); want the 200 headers cut off by a reset, without the body the plugin stopped", resp.StatusCode, b, rerr)
		}
	}
	g.waitLog("probe[late-reply]: late_reply_status=0", 1)
	eventually(t, 10*time.Second, "the access log line", func() bool { return len(g.AccessLog()) == 1 })
	if rec := g.AccessLog()[0]; rec["bytes_out"] != float64(0) {
		t.Fatalf("access log bytes_out = %v, want 0 (the stopped chunk must not be sent)", rec["bytes_out"])
	}
}
