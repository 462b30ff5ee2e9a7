package e2e

// The harness: a gateway started in-process through internal/app from a
// YAML file written by the test, upstreams on httptest servers, polling
// helpers and readers for the access log and the metrics. When a test
// fails, the harness logs the configuration, the gateway's own log, every
// access log line and the sluice_* metrics.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

// waitLimit bounds every wait. It is generous on purpose: the suite must
// pass on a loaded 2-core machine under -race; a correct run never waits
// this long.
const waitLimit = 20 * time.Second

// eventually polls cond every 10ms until it holds, failing the test after
// waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receive waits for one value from ch, failing the test after waitLimit.
func receive[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		panic("unreachable")
	}
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// --- configuration ----------------------------------------------------------

// doc renders one resource. spec is a YAML flow mapping ("{...}").
func doc(kind, name, spec string) string {
	return fmt.Sprintf("---\napiVersion: sluice.dev/v1alpha1\nkind: %s\nmetadata: {name: %s}\nspec: %s\n", kind, name, spec)
}

// clusterDoc is a static cluster over addrs ("host:port"), with extra
// spec entries (flow-mapping members such as `healthCheck: {...}`).
func clusterDoc(name string, addrs []string, extra ...string) string {
	eps := make([]string, len(addrs))
	for i, a := range addrs {
		eps[i] = fmt.Sprintf("{address: %q}", a)
	}
	members := append([]string{"endpoints: [" + strings.Join(eps, ", ") + "]"}, extra...)
	return doc("Cluster", name, "{"+strings.Join(members, ", ")+"}")
}

// routeDoc is a route whose spec is the given flow-mapping members.
func routeDoc(name string, members ...string) string {
	return doc("Route", name, "{"+strings.Join(members, ", ")+"}")
}

// gwConfig describes a gateway for startGateway.
type gwConfig struct {
	// Listeners is the YAML flow sequence of listeners; default one plain
	// listener "main" on 127.0.0.1:0.
	Listeners string
	// Spec holds extra members of the Gateway spec (`limits: {...}`).
	Spec []string
	// AdminToken, when set, is the admin bearer token.
	AdminToken string
	// Docs are the other resources (clusters, routes).
	Docs []string
}

// gw is a running gateway.
type gw struct {
	t         testing.TB
	app       *app.App
	dir       string
	cfgPath   string
	accessLog string
	logs      *lockedBuffer
	token     string
	client    *http.Client
}

// startGateway writes cfg to a temporary file, loads it through
// internal/config and starts the whole gateway through internal/app. The
// gateway is shut down when the test ends; if the test failed, its state
// is dumped first.
func startGateway(t testing.TB, cfg gwConfig) *gw {
	t.Helper()
	dir := t.TempDir()
	g := &gw{t: t, dir: dir, accessLog: filepath.Join(dir, "access.log"), logs: &lockedBuffer{}, token: cfg.AdminToken}
	listeners := cfg.Listeners
	if listeners == "" {
		listeners = `[{name: main, address: "127.0.0.1:0"}]`
	}
	admin := `{address: "127.0.0.1:0"}`
	if cfg.AdminToken != "" {
		admin = fmt.Sprintf(`{address: "127.0.0.1:0", bearerToken: %q}`, cfg.AdminToken)
	}
	members := append([]string{
		"listeners: " + listeners,
		"admin: " + admin,
		fmt.Sprintf("accessLog: {path: %q}", g.accessLog),
	}, cfg.Spec...)
	text := doc("Gateway", "e2e", "{"+strings.Join(members, ", ")+"}") + strings.Join(cfg.Docs, "")
	return g.launch(text)
}

// launch writes the configuration text to the gateway's directory, loads
// it and starts the gateway, stopped (and dumped on failure) when the test
// ends.
func (g *gw) launch(text string) *gw {
	t := g.t
	t.Helper()
	g.cfgPath = filepath.Join(g.dir, "sluice.yaml")
	if err := os.WriteFile(g.cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(g.cfgPath)
	if err != nil {
		t.Fatalf("config:\n%s\nerrors:\n%v", text, err)
	}
	logger := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), snap, app.Options{Logger: logger, Version: "e2e"})
	if err != nil {
		t.Fatalf("app.New: %v\nconfig:\n%s", err, text)
	}
	g.app = a
	if err := a.Start(context.Background()); err != nil {
		_ = a.Shutdown(context.Background())
		t.Fatalf("app.Start: %v\nconfig:\n%s", err, text)
	}
	g.client = &http.Client{
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(func() {
		g.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := g.app.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if t.Failed() {
			g.dump()
		}
	})
	return g
}

// dump logs everything useful for understanding a failure.
func (g *gw) dump() {
	t := g.t
	cfg, _ := os.ReadFile(g.cfgPath)
	t.Logf("=== configuration (%s)\n%s", g.cfgPath, cfg)
	t.Logf("=== gateway log\n%s", g.logs.String())
	al, _ := os.ReadFile(g.accessLog)
	t.Logf("=== access log\n%s", al)
	var out strings.Builder
	if mfs, err := g.app.Registry().Gather(); err == nil {
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "sluice_") {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				v := 0.0
				switch {
				case m.GetCounter() != nil:
					v = m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					v = m.GetGauge().GetValue()
				case m.GetHistogram() != nil:
					v = float64(m.GetHistogram().GetSampleCount())
				}
				fmt.Fprintf(&out, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), v)
			}
		}
	}
	t.Logf("=== metrics (histograms as sample counts)\n%s", out.String())
}

// addr is the bound address of a listener.
func (g *gw) addr(listener string) string {
	g.t.Helper()
	a := g.app.Gateway().Addr(listener)
	if a == "" {
		g.t.Fatalf("no listener %q", listener)
	}
	return a
}

// url is "http://<address of the main listener>" + path.
func (g *gw) url(path string) string { return "http://" + g.addr("main") + path }

// do sends req with the harness client and reads the whole body.
func (g *gw) do(req *http.Request) (*http.Response, []byte) {
	g.t.Helper()
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// get sends GET path with the given Host header.
func (g *gw) get(host, path string, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url(path), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return g.do(req)
}

// admin sends GET path to the admin listener, with the bearer token when
// withToken is set.
func (g *gw) admin(path string, withToken bool) (*http.Response, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+g.app.AdminAddr()+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if withToken && g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	return g.do(req)
}

// metrics scrapes /metrics from the admin listener.
func (g *gw) metrics() string {
	g.t.Helper()
	resp, body := g.admin("/metrics", true)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// metric is the sum of the samples of name whose labels include labels.
func (g *gw) metric(name string, labels map[string]string) (float64, bool) {
	g.t.Helper()
	return metricValue(g.metrics(), name, labels)
}

// metricValue reads a Prometheus text exposition: the sum of the samples
// named name carrying (at least) labels, and whether there was one.
func metricValue(text, name string, labels map[string]string) (float64, bool) {
	sum, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbls map[string]string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			lbls = parseLabels(rest[1:end])
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // a longer name with the same prefix
		}
		ok := true
		for k, v := range labels {
			if lbls[k] != v {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		sum += f
		found = true
	}
	return sum, found
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			break
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		out[key] = val.String()
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out
}

// --- access log ---------------------------------------------------------------

// accessEntry is one access log line.
type accessEntry struct {
	Time               string  `json:"time"`
	Listener           string  `json:"listener"`
	Method             string  `json:"method"`
	Authority          string  `json:"authority"`
	Path               string  `json:"path"`
	Protocol           string  `json:"protocol"`
	ClientAddr         string  `json:"client_addr"`
	UserAgent          string  `json:"user_agent"`
	Status             int     `json:"status"`
	Route              string  `json:"route"`
	Cluster            string  `json:"cluster"`
	UpstreamHost       string  `json:"upstream_host"`
	DurationMS         float64 `json:"duration_ms"`
	UpstreamDurationMS float64 `json:"upstream_duration_ms"`
	TTFBMS             float64 `json:"ttfb_ms"`
	BytesIn            int64   `json:"bytes_in"`
	BytesOut           int64   `json:"bytes_out"`
	RequestID          string  `json:"request_id"`
	ResponseDetails    string  `json:"response_details"`
	TraceID            string  `json:"trace_id"`

	raw map[string]any
}

// accessEntries parses the access log written so far.
func (g *gw) accessEntries() []accessEntry {
	g.t.Helper()
	data, err := os.ReadFile(g.accessLog)
	if err != nil && !os.IsNotExist(err) {
		g.t.Fatal(err)
	}
	var out []accessEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e accessEntry
		if err := json.Unmarshal(line, &e); err != nil {
			g.t.Fatalf("access log line is not JSON: %v\n%s", err, line)
		}
		if err := json.Unmarshal(line, &e.raw); err != nil {
			g.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// waitAccess waits for the access log line of the request with id and
// returns it. (The line is written after the response completes, so a
// client may see the response before the line exists.)
func (g *gw) waitAccess(id string) accessEntry {
	g.t.Helper()
	var found accessEntry
	eventually(g.t, "access log line for request "+id, func() bool {
		for _, e := range g.accessEntries() {
			if e.RequestID == id {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// --- upstreams ------------------------------------------------------------------

// seenRequest is what an echo upstream received.
type seenRequest struct {
	Upstream  string      `json:"upstream"`
	Method    string      `json:"method"`
	Host      string      `json:"host"`
	URI       string      `json:"uri"`
	Proto     string      `json:"proto"`
	Header    http.Header `json:"header"`
	BodyBytes int64       `json:"body_bytes"`
	BodySHA   string      `json:"body_sha256"`
}

// echoUpstream answers every request with a JSON description of it and
// remembers what it saw.
type echoUpstream struct {
	name string
	srv  *httptest.Server

	mu   sync.Mutex
	seen []seenRequest
}

func newEchoUpstream(t testing.TB, name string) *echoUpstream {
	t.Helper()
	u := &echoUpstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *echoUpstream) serve(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s := seenRequest{
		Upstream: u.name, Method: r.Method, Host: r.Host, URI: r.RequestURI, Proto: r.Proto,
		Header: r.Header.Clone(), BodyBytes: n, BodySHA: hex.EncodeToString(h.Sum(nil)),
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", u.name)
	_ = json.NewEncoder(w).Encode(s)
}

func (u *echoUpstream) addr() string { return u.srv.Listener.Addr().String() }

func (u *echoUpstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

// decodeSeen parses an echo upstream's answer.
func decodeSeen(t testing.TB, body []byte) seenRequest {
	t.Helper()
	var s seenRequest
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("response is not an echo upstream's answer: %v\n%s", err, body)
	}
	return s
}

// gatewayError is the JSON body of a reply the gateway makes itself.
type gatewayError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
		Status  int    `json:"status"`
	} `json:"error"`
}

// decodeGatewayError parses a gateway reply and checks its shape.
func decodeGatewayError(t testing.TB, resp *http.Response, body []byte) gatewayError {
	t.Helper()
	var e gatewayError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("status %d: body is not JSON: %v\n%s", resp.StatusCode, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("status %d: Content-Type %q, want application/json", resp.StatusCode, ct)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("status %d: error body lacks code or message: %s", resp.StatusCode, body)
	}
	if e.Error.Status != resp.StatusCode {
		t.Errorf("error body status %d, response status %d", e.Error.Status, resp.StatusCode)
	}
	return e
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawExchange writes request bytes on a new connection to addr and reads
// one response.
func rawExchange(t testing.TB, addr, request string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", truncate(request, 80), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
