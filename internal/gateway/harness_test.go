package gateway_test

// The harness for the stream-driver seam tests: recording upstreams on
// httptest servers, a gateway started from YAML on 127.0.0.1:0, client
// helpers, and a programmable filter whose callbacks record what they saw.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/telemetry"
)

// waitLimit bounds every wait in these tests. It is generous on purpose:
// the suite must pass on a loaded 2-core machine; a correct run never
// waits this long.
const waitLimit = 20 * time.Second

// --- events ---------------------------------------------------------------

// event is one filter callback (or a test marker) as it happened.
type event struct {
	filter string // "f0", "f1", … or "" for markers
	kind   string // reqHeaders, reqBody, reqTrailers, respHeaders, respBody, respTrailers, log, destroy, or a marker
	n      int    // body length
	eos    bool
	note   string
}

func (e event) String() string {
	s := e.kind
	if e.filter != "" {
		s = e.filter + ":" + e.kind
	}
	switch e.kind {
	case "reqBody", "respBody":
		s += fmt.Sprintf("(%d,%v)", e.n, e.eos)
	case "reqHeaders", "respHeaders":
		s += fmt.Sprintf("(%v)", e.eos)
	}
	if e.note != "" {
		s += "[" + e.note + "]"
	}
	return s
}

// recorder collects events from the driver goroutine and test goroutines.
type recorder struct {
	mu  sync.Mutex
	evs []event
}

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) mark(kind string) { r.add(event{kind: kind}) }

func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.evs...)
}

// names lists "filter:kind" (markers as "kind") of the events matching keep
// (all when keep is nil), collapsing consecutive repeats, which makes the
// order assertions independent of how the body happened to be chunked.
func (r *recorder) names(keep func(event) bool) []string {
	var out []string
	for _, e := range r.all() {
		if keep != nil && !keep(e) {
			continue
		}
		s := e.kind
		if e.filter != "" {
			s = e.filter + ":" + e.kind
		}
		if len(out) > 0 && out[len(out)-1] == s {
			continue
		}
		out = append(out, s)
	}
	return out
}

// of returns the events of one filter and kind.
func (r *recorder) of(filter, kind string) []event {
	var out []event
	for _, e := range r.all() {
		if e.filter == filter && e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) has(filter, kind string) bool { return len(r.of(filter, kind)) > 0 }

// waitFor polls until filter:kind was recorded.
func (r *recorder) waitFor(t *testing.T, filter, kind string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s:%s", filter, kind), func() bool { return r.has(filter, kind) })
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, e := range r.all() {
		b.WriteString("  ")
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func kindIs(kinds ...string) func(event) bool {
	return func(e event) bool {
		for _, k := range kinds {
			if e.kind == k {
				return true
			}
		}
		return false
	}
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recv waits for a value on ch for at most waitLimit.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// --- the programmable filter ---------------------------------------------

// hooks program a test filter. A nil hook continues. Every callback is
// recorded before its hook runs.
type hooks struct {
	reqHeaders   func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction
	reqBody      func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction
	reqTrailers  func(f *tfilter, t *gateway.Headers) gateway.TrailersAction
	respHeaders  func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction
	respBody     func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction
	respTrailers func(f *tfilter, t *gateway.Headers) gateway.TrailersAction
	log          func(f *tfilter)
	destroy      func(f *tfilter)
}

// factory makes tfilters; one factory is one position in the chain.
type factory struct {
	name string
	rec  *recorder
	hk   hooks
}

func (fa *factory) Name() string { return fa.name }

func (fa *factory) NewFilter(h *gateway.FilterHandle) gateway.Filter {
	return &tfilter{name: fa.name, h: h, rec: fa.rec, hk: &fa.hk}
}

// tfilter is one stream's instance of a test filter.
type tfilter struct {
	name string
	h    *gateway.FilterHandle
	rec  *recorder
	hk   *hooks
}

func (f *tfilter) add(kind string, n int, eos bool, note string) {
	f.rec.add(event{filter: f.name, kind: kind, n: n, eos: eos, note: note})
}

func (f *tfilter) OnRequestHeaders(h *gateway.Headers, eos bool) gateway.HeadersAction {
	f.add("reqHeaders", 0, eos, "")
	if f.hk.reqHeaders != nil {
		return f.hk.reqHeaders(f, h, eos)
	}
	return gateway.HeadersContinue
}

func (f *tfilter) OnRequestBody(b *gateway.Buffer, eos bool) gateway.DataAction {
	f.add("reqBody", b.Len(), eos, "")
	if f.hk.reqBody != nil {
		return f.hk.reqBody(f, b, eos)
	}
	return gateway.DataContinue
}

func (f *tfilter) OnRequestTrailers(t *gateway.Headers) gateway.TrailersAction {
	f.add("reqTrailers", 0, false, "")
	if f.hk.reqTrailers != nil {
		return f.hk.reqTrailers(f, t)
	}
	return gateway.TrailersContinue
}

func (f *tfilter) OnResponseHeaders(h *gateway.Headers, eos bool) gateway.HeadersAction {
	f.add("respHeaders", 0, eos, h.Value(":status"))
	if f.hk.respHeaders != nil {
		return f.hk.respHeaders(f, h, eos)
	}
	return gateway.HeadersContinue
}

func (f *tfilter) OnResponseBody(b *gateway.Buffer, eos bool) gateway.DataAction {
	f.add("respBody", b.Len(), eos, "")
	if f.hk.respBody != nil {
		return f.hk.respBody(f, b, eos)
	}
	return gateway.DataContinue
}

func (f *tfilter) OnResponseTrailers(t *gateway.Headers) gateway.TrailersAction {
	f.add("respTrailers", 0, false, "")
	if f.hk.respTrailers != nil {
		return f.hk.respTrailers(f, t)
	}
	return gateway.TrailersContinue
}

func (f *tfilter) OnLog() {
	f.add("log", 0, false, "")
	if f.hk.log != nil {
		f.hk.log(f)
	}
}

func (f *tfilter) OnDestroy() {
	f.add("destroy", 0, false, "")
	if f.hk.destroy != nil {
		f.hk.destroy(f)
	}
}

// chain builds n factories f0…f(n-1) sharing rec; program them through the
// returned slice before the first request.
func chain(rec *recorder, n int) []*factory {
	out := make([]*factory, n)
	for i := range out {
		out[i] = &factory{name: fmt.Sprintf("f%d", i), rec: rec}
	}
	return out
}

// --- upstreams -------------------------------------------------------------

// seenRequest is what an upstream received.
type seenRequest struct {
	Method           string
	Path             string // path and query
	Host             string
	Header           http.Header
	Body             []byte
	Trailer          http.Header
	ContentLength    int64
	TransferEncoding []string
	Proto            string
}

// upstream is a recording HTTP server on 127.0.0.1:0.
type upstream struct {
	srv  *httptest.Server
	addr string

	mu   sync.Mutex
	reqs []seenRequest
}

// respondFunc answers a request after the upstream recorded it (body read).
type respondFunc func(w http.ResponseWriter, r *http.Request, seen seenRequest)

// startUpstream starts a recording upstream. respond may be nil: it then
// answers 200 "upstream <name>" with header X-Upstream: name.
func startUpstream(t *testing.T, name string, respond respondFunc) *upstream {
	t.Helper()
	u := &upstream{}
	if respond == nil {
		respond = func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
			w.Header().Set("X-Upstream", name)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "upstream "+name)
		}
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen := seenRequest{
			Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(),
			Body: body, Trailer: r.Trailer.Clone(), ContentLength: r.ContentLength,
			TransferEncoding: r.TransferEncoding, Proto: r.Proto,
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, seen)
		u.mu.Unlock()
		respond(w, r, seen)
	}))
	u.addr = u.srv.Listener.Addr().String()
	t.Cleanup(u.srv.Close)
	return u
}

// startRawUpstream starts an upstream with a handler that does not read the
// body first (streaming, slow and cancellation tests).
func startRawUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{srv: httptest.NewServer(h)}
	u.addr = u.srv.Listener.Addr().String()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.reqs...)
}

func (u *upstream) count() int { return len(u.requests()) }

// only returns the single request the upstream received.
func (u *upstream) only(t *testing.T) seenRequest {
	t.Helper()
	rs := u.requests()
	if len(rs) != 1 {
		t.Fatalf("upstream %s received %d requests, want 1", u.addr, len(rs))
	}
	return rs[0]
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// --- configuration ----------------------------------------------------------

// gatewayDoc is the Gateway document: one listener "main" on port 0.
const gatewayDoc = `apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata:
  name: test
spec:
  listeners:
    - name: main
      address: 127.0.0.1:0
  admin:
    disabled: true
  accessLog:
    path: "off"
`

// clusterDoc declares a static cluster.
func clusterDoc(name string, endpoints ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\napiVersion: sluice.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: %s\nspec:\n  endpoints:\n", name)
	for _, e := range endpoints {
		fmt.Fprintf(&b, "    - address: %s\n", e)
	}
	return b.String()
}

// routeDoc declares a route; spec is the YAML under spec:, indented by the
// caller with two spaces.
func routeDoc(name, spec string) string {
	return fmt.Sprintf("---\napiVersion: sluice.dev/v1alpha1\nkind: Route\nmetadata:\n  name: %s\nspec:\n%s", name, spec)
}

// catchAll is a cluster "up" with the given endpoints and one route "all"
// for every request.
func catchAll(endpoints ...string) string {
	return clusterDoc("up", endpoints...) + routeDoc("all", "  cluster: up\n")
}

func parseConfig(t *testing.T, docs string) *config.Snapshot {
	t.Helper()
	snap, err := config.Parse("test.yaml", []byte(docs))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", docs, err)
	}
	return snap
}

// --- the gateway -------------------------------------------------------------

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a running gateway with its recorder and logs.
type env struct {
	t      *testing.T
	gw     *gateway.Server
	base   string // http://host:port
	rec    *recorder
	access *syncBuffer
	logs   *syncBuffer
}

// startGateway starts a gateway for docs (appended to gatewayDoc) whose
// every stream runs through fs.
func startGateway(t *testing.T, rec *recorder, docs string, fs ...*factory) *env {
	t.Helper()
	return startGatewayDoc(t, rec, gatewayDoc, docs, fs...)
}

// startGatewayDoc is startGateway with gwDoc in place of gatewayDoc.
func startGatewayDoc(t *testing.T, rec *recorder, gwDoc, docs string, fs ...*factory) *env {
	t.Helper()
	snap := parseConfig(t, gwDoc+docs)
	e := &env{t: t, rec: rec, access: &syncBuffer{}, logs: &syncBuffer{}}
	ffs := make([]gateway.FilterFactory, len(fs))
	for i, f := range fs {
		ffs[i] = f
	}
	opts := gateway.Options{
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AccessLog: telemetry.NewAccessLogWriter(e.access),
	}
	if len(ffs) > 0 {
		opts.Chain = func(*gateway.Stream) []gateway.FilterFactory { return ffs }
	}
	gw, err := gateway.New(snap, opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.gw = gw
	e.base = "http://" + gw.Addr("main")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("filter events:\n%s", rec.dump())
			t.Logf("access log:\n%s", e.access.String())
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	return e
}

// client returns an HTTP/1.1 client that opens a fresh connection per
// request, so no request is ever retried on a reused connection.
func (e *env) client() *http.Client {
	return &http.Client{Timeout: waitLimit, Transport: &http.Transport{DisableKeepAlives: true}}
}

// h2cClient speaks HTTP/2 with prior knowledge.
func (e *env) h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: waitLimit, Transport: tr}
}

// result is a completed exchange.
type result struct {
	status  int
	header  http.Header
	body    []byte
	trailer http.Header
	resp    *http.Response
}

// do sends a request and reads the whole response.
func (e *env) do(method, path string, body io.Reader, hdr map[string]string) result {
	e.t.Helper()
	return e.doWith(e.client(), method, path, body, hdr)
}

func (e *env) doWith(c *http.Client, method, path string, body io.Reader, hdr map[string]string) result {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b, trailer: resp.Trailer, resp: resp}
}

// finished waits until every filter got OnDestroy (the stream ended).
func (e *env) finished(fs []*factory) {
	e.t.Helper()
	for _, f := range fs {
		e.rec.waitFor(e.t, f.name, "destroy")
	}
}

// accessRecords waits for n access log lines and parses them.
func (e *env) accessRecords(n int) []map[string]any {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("%d access log lines", n), func() bool {
		return strings.Count(e.access.String(), "\n") >= n
	})
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.access.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.t.Fatalf("access log line is not JSON: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// gatewayError is the JSON body of a gateway reply.
type gatewayError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
		Status  int    `json:"status"`
	} `json:"error"`
}

func parseGatewayError(t *testing.T, r result) gatewayError {
	t.Helper()
	var ge gatewayError
	if err := json.Unmarshal(r.body, &ge); err != nil {
		t.Fatalf("body is not a gateway JSON error: %v\n%s", err, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return ge
}

// --- assertions --------------------------------------------------------------

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// pattern makes a deterministic body of n bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
