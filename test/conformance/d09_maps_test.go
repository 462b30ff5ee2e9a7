package conformance

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Checklist D.9: header and trailer maps through the raw hostcalls.

// mapsProbe exercises every map operation on request headers, request
// trailers, response headers and response trailers, and reports each
// result into the map that still travels (request headers while the probe
// holds them, response headers, response trailers).
const mapsProbe = `{"name": "maps", "on": {
  "request_headers": {"steps": [
    {"op": "get_header", "key": "X-MIXED-Case", "to": "header:x-got-mixed"},
    {"op": "get_header", "key": "x-absent", "status": "header:x-absent-status"},
    {"op": "add_header", "key": "X-Added", "value": "one", "status": "header:x-add-status"},
    {"op": "add_header", "key": "x-multi", "value": "c"},
    {"op": "replace_header", "key": "X-Replace", "value": "new", "status": "header:x-replace-status"},
    {"op": "replace_header", "key": "x-new-by-replace", "value": "r"},
    {"op": "remove_header", "key": "X-Remove-Me", "status": "header:x-remove-status"},
    {"op": "remove_header", "key": "x-not-there", "status": "header:x-remove-absent-status"},
    {"op": "get_headers", "map": "request_trailers", "encoding": "len", "to": "header:x-req-trailers-len", "status": "header:x-req-trailers-status"},
    {"op": "get_headers", "map": "response_headers", "encoding": "len", "to": "header:x-resp-map-len", "status": "header:x-resp-map-status"},
    {"op": "get_header", "map": "response_headers", "key": ":status", "status": "header:x-resp-value-status"},
    {"op": "get_headers", "to": "var:pairs"},
    {"op": "get_var", "name": "pairs", "to": "header:x-pairs"}
  ], "action": "stop_iteration"},
  "request_body": {"steps": [], "action": "pause"},
  "request_trailers": [
    {"op": "get_header", "map": "request_trailers", "key": "X-Req-Trailer", "to": "header:request_headers:x-got-req-trailer"},
    {"op": "add_header", "map": "request_trailers", "key": "X-Probe-Trailer", "value": "pt", "status": "header:request_headers:x-trl-add-status"},
    {"op": "replace_header", "map": "request_trailers", "key": "x-req-trailer", "value": "rt2", "status": "header:request_headers:x-trl-replace-status"},
    {"op": "remove_header", "map": "request_trailers", "key": "x-drop-trailer", "status": "header:request_headers:x-trl-remove-status"},
    {"op": "get_headers", "map": "request_trailers", "to": "header:request_headers:x-req-trailer-pairs"}
  ],
  "response_headers": [
    {"op": "get_header", "key": ":status", "to": "header:x-resp-status"},
    {"op": "get_header", "key": "X-UP-Header", "to": "header:x-got-up"},
    {"op": "add_header", "key": "X-Resp-Added", "value": "ra"},
    {"op": "replace_header", "key": "x-up-replace", "value": "new"},
    {"op": "remove_header", "key": "x-up-remove"},
    {"op": "set_header", "map": "request_headers", "key": "x-late", "value": "1", "status": "header:x-late-replace"},
    {"op": "add_header", "map": "request_headers", "key": "x-late", "value": "1", "status": "header:x-late-add"},
    {"op": "remove_header", "map": "request_headers", "key": "x-added", "status": "header:x-late-remove"},
    {"op": "set_headers", "map": "request_headers", "pairs": [["a", "b"]], "status": "header:x-late-set-pairs"},
    {"op": "get_headers", "map": "response_trailers", "encoding": "len", "to": "header:x-resp-trailers-len", "status": "header:x-resp-trailers-status"},
    {"op": "get_headers", "to": "var:pairs"},
    {"op": "get_var", "name": "pairs", "to": "header:x-resp-pairs"}
  ],
  "response_trailers": [
    {"op": "get_header", "map": "response_trailers", "key": "X-Up-Trailer", "to": "header:response_trailers:x-got-up-trailer"},
    {"op": "add_header", "map": "response_trailers", "key": "X-Probe-Resp-Trailer", "value": "prt"},
    {"op": "replace_header", "map": "response_trailers", "key": "x-up-trailer", "value": "ut2"},
    {"op": "set_header", "map": "response_headers", "key": "x-too-late", "value": "1", "status": "header:response_trailers:x-late-resp-write"},
    {"op": "get_headers", "map": "response_trailers", "to": "header:response_trailers:x-resp-trailer-pairs"}
  ]}}`

// pairsOf decodes a probe "pairs" report.
func pairsOf(t *testing.T, what, s string) [][2]string {
	t.Helper()
	var p [][2]string
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatalf("%s: %q is not a pairs report: %v", what, s, err)
	}
	return p
}

// valuesOf lists the values of key in pairs, in order.
func valuesOf(p [][2]string, key string) []string {
	var out []string
	for _, kv := range p {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

// noUpperKeys fails when a pairs report holds a key with upper case.
func noUpperKeys(t *testing.T, what string, p [][2]string) {
	t.Helper()
	for _, kv := range p {
		if kv[0] != strings.ToLower(kv[0]) {
			t.Errorf("%s: key %q is not lower case (%v)", what, kv[0], p)
		}
	}
}

// TestD9HeaderAndTrailerMaps: get / add / replace / remove / pairs on the
// four stream maps; lookups ignore case and every key the guest sees or
// writes is lower case; replace leaves exactly one value (Envoy's setCopy
// since 1.16: remove all, add one — spec/host.md §1.3 still describes the
// older "first value only" behaviour); remove drops every value and is OK for absent keys; absent keys
// are NOT_FOUND; an unavailable map (response headers during the request,
// trailers that have not arrived) reads as OK with nothing (ptr = size = 0)
// through pairs and as BAD_ARGUMENT through a value read; once a direction
// was forwarded, writing its headers is BAD_ARGUMENT.
func TestD9HeaderAndTrailerMaps(t *testing.T) {
	u := newUpstream(t)
	var mu sync.Mutex
	var upTrailers http.Header
	u.Handle = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		mu.Lock()
		upTrailers = r.Trailer.Clone()
		mu.Unlock()
		h := w.Header()
		h.Set("X-Up-Header", "u")
		h.Set("X-Up-Replace", "old")
		h.Set("X-Up-Remove", "1")
		h.Set("Trailer", "X-Up-Trailer")
		_, _ = io.WriteString(w, "resp body")
		w.(http.Flusher).Flush()
		h.Set("X-Up-Trailer", "ut")
	}
	g := startGateway(t, clusterAndRoute(u)+probe("maps", mapsProbe, ""))

	s := g.openChunked("POST", "/d9/maps",
		"X-Mixed-Case", "v1", "x-multi", "a", "X-Multi", "b",
		"X-Replace", "old1", "X-Replace", "old2", "X-Remove-Me", "1", "x-remove-me", "2",
		"Trailer", "X-Req-Trailer, X-Drop-Trailer")
	s.chunk("req body")
	s.end("X-Req-Trailer", "rt", "X-Drop-Trailer", "d")
	resp, body := s.response()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}

	// Request headers, as the upstream got them.
	r := lastRequest(t, u)
	if r.Body != "req body" {
		t.Errorf("upstream body %q", r.Body)
	}
	wantHeaders(t, "upstream", r.Header, map[string]string{
		"x-got-mixed":            "v1",
		"x-absent-status":        "1",
		"x-add-status":           "0",
		"x-added":                "one",
		"x-replace-status":       "0",
		"x-new-by-replace":       "r",
		"x-remove-status":        "0",
		"x-remove-absent-status": "0",
		"x-req-trailers-len":     "0",
		"x-req-trailers-status":  "0",
		"x-resp-map-len":         "0",
		"x-resp-map-status":      "0",
		"x-resp-value-status":    "2",
		"x-got-req-trailer":      "rt",
		"x-trl-add-status":       "0",
		"x-trl-replace-status":   "0",
		"x-trl-remove-status":    "0",
	})
	if got := r.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("upstream x-multi = %q, want [a b c] (add appends)", got)
	}
	if got := r.Header.Values("X-Replace"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("upstream x-replace = %q, want [new] (replace leaves one value, as Envoy's setCopy since 1.16)", got)
	}
	if got, ok := r.Header["X-Remove-Me"]; ok {
		t.Errorf("upstream x-remove-me = %q, want it removed (every value)", got)
	}
	pairs := pairsOf(t, "request pairs", r.Header.Get("X-Pairs"))
	noUpperKeys(t, "request pairs", pairs)
	for key, want := range map[string][]string{
		":method": {"POST"}, ":path": {"/d9/maps"}, "x-mixed-case": {"v1"}, "x-added": {"one"},
		"x-multi": {"a", "b", "c"}, "x-replace": {"new"},
	} {
		if got := valuesOf(pairs, key); !slices.Equal(got, want) {
			t.Errorf("request pairs %s = %q, want %q (%v)", key, got, want, pairs)
		}
	}

	// Request trailers.
	trlPairs := pairsOf(t, "request trailer pairs", r.Header.Get("X-Req-Trailer-Pairs"))
	noUpperKeys(t, "request trailer pairs", trlPairs)
	if got := valuesOf(trlPairs, "x-req-trailer"); !slices.Equal(got, []string{"rt2"}) {
		t.Errorf("request trailer pairs x-req-trailer = %q, want [rt2] (%v)", got, trlPairs)
	}
	mu.Lock()
	ut := upTrailers
	mu.Unlock()
	if ut.Get("X-Req-Trailer") != "rt2" || ut.Get("X-Probe-Trailer") != "pt" || ut.Get("X-Drop-Trailer") != "" {
		t.Errorf("upstream trailers %v, want x-req-trailer rt2, x-probe-trailer pt, no x-drop-trailer", ut)
	}

	// Response headers, as the client got them.
	wantHeaders(t, "response", resp.Header, map[string]string{
		"x-resp-status":          "200",
		"x-got-up":               "u",
		"x-resp-added":           "ra",
		"x-up-replace":           "new",
		"x-late-replace":         "2",
		"x-late-add":             "2",
		"x-late-remove":          "2",
		"x-late-set-pairs":       "2",
		"x-resp-trailers-len":    "0",
		"x-resp-trailers-status": "0",
	})
	if got, ok := resp.Header["X-Up-Remove"]; ok {
		t.Errorf("response x-up-remove = %q, want it removed", got)
	}
	respPairs := pairsOf(t, "response pairs", resp.Header.Get("X-Resp-Pairs"))
	noUpperKeys(t, "response pairs", respPairs)
	if got := valuesOf(respPairs, "x-resp-added"); !slices.Equal(got, []string{"ra"}) {
		t.Errorf("response pairs x-resp-added = %q (%v)", got, respPairs)
	}
	if got := valuesOf(respPairs, ":status"); !slices.Equal(got, []string{"200"}) {
		t.Errorf("response pairs :status = %q (%v)", got, respPairs)
	}
	if _, ok := r.Header["X-Late"]; ok {
		t.Errorf("a request header written in the response phase reached the upstream")
	}

	// Response trailers, as the client got them.
	wantHeaders(t, "response trailers", resp.Trailer, map[string]string{
		"x-got-up-trailer":     "ut",
		"x-probe-resp-trailer": "prt",
		"x-up-trailer":         "ut2",
		"x-late-resp-write":    "2",
	})
	if _, ok := resp.Header["X-Too-Late"]; ok {
		t.Errorf("a response header written in the trailer phase reached the client")
	}
	rtPairs := pairsOf(t, "response trailer pairs", resp.Trailer.Get("X-Resp-Trailer-Pairs"))
	noUpperKeys(t, "response trailer pairs", rtPairs)
}

// TestD9EmptyMapIsNothing: a map with no entries (the trailers of a
// request and a response without trailers) comes back from
// get_header_map_pairs as OK with ptr = size = 0 — not as a 4-byte zero
// count — so the SDK reports it as empty (NOT_FOUND).
func TestD9EmptyMapIsNothing(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, clusterAndRoute(u)+probe("maps", `{"name": "maps", "on": {
	  "response_body": [
	    {"op": "get_headers", "map": "response_trailers", "encoding": "len", "to": "log:body_trailers_len", "status": "log:body_trailers_status", "when": "eos"},
	    {"op": "get_headers", "map": "request_trailers", "encoding": "len", "to": "log:body_req_trailers_len", "status": "log:body_req_trailers_status", "when": "eos"},
	    {"op": "get_header", "map": "response_trailers", "key": "x-none", "status": "log:body_trailer_value_status", "when": "eos"}],
	  "log": [
	    {"op": "get_headers", "map": "response_trailers", "encoding": "len", "to": "log:log_trailers_len", "status": "log:log_trailers_status"},
	    {"op": "get_header", "map": "response_trailers", "key": "x-none", "status": "log:log_trailer_value_status"}]}}`, ""))
	resp, body := g.Do("GET", "/d9/empty", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, line := range []string{
		"probe[maps]: body_trailers_status=0", "probe[maps]: body_trailers_len=0",
		"probe[maps]: body_req_trailers_status=0", "probe[maps]: body_req_trailers_len=0",
		"probe[maps]: log_trailers_status=0", "probe[maps]: log_trailers_len=0",
		// A value read from the absent map: BAD_ARGUMENT while the stream
		// runs, NOT_FOUND in the access-log phase (as Envoy).
		"probe[maps]: body_trailer_value_status=2", "probe[maps]: log_trailer_value_status=1",
	} {
		eventually(t, 10*time.Second, line, func() bool { return g.countLog(line+"\"") > 0 || g.countLog(line+" ") > 0 })
	}
}
