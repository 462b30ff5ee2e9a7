package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// Test plugins, built once per test binary. Both set a header named by
// their configuration on the request (which the upstream echoes as
// x-seen-cfg) and on the response, so a request shows which configuration
// it ran with in each phase; the probe also appends "|<value>\n" to every
// response body chunk.
var (
	probeWasm []byte
	helloWasm []byte
	// cacheDir is wazero's compilation cache, shared by the tests.
	cacheDir = filepath.Join(os.TempDir(), "sluice-app-test-wasm-cache")
)

func TestMain(m *testing.M) {
	for name, dst := range map[string]*[]byte{"go/probe": &probeWasm, "wasmgo/hello-rules": &helloWasm} {
		p, err := wasmtest.Build(name)
		if err == nil {
			*dst, err = os.ReadFile(p)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	// Compile both modules into the shared cache first: under -race on a
	// busy machine a cold compile of the wasm-go module takes tens of
	// seconds, longer than the tests wait for a reload in the middle of a
	// stream.
	if err := warmCache(probeWasm, helloWasm); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// warmCache compiles modules into cacheDir with a throwaway runtime.
func warmCache(mods ...[]byte) error {
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: cacheDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer func() { _ = rt.Close(ctx) }()
	for _, m := range mods {
		if _, err := rt.Compile(ctx, m); err != nil {
			return fmt.Errorf("warming the compilation cache: %w", err)
		}
	}
	return nil
}

// waitLimit bounds every wait for an asynchronous outcome.
const waitLimit = 20 * time.Second

// module names a plugin version of a rig: which code and which value.
type module string

const (
	probe  module = "probe.wasm"
	hello  module = "hello.wasm"
	broken module = "broken.wasm" // not Wasm: fails to compile
)

// pluginSpec is one WasmPlugin of a rig's configuration.
type pluginSpec struct {
	name  string
	mod   module
	value string
	// reject makes the configuration one the plugin rejects (configure
	// returns false).
	reject bool
	// raw, when set, is the JSON configuration as is (value and reject are
	// then unused).
	raw string
}

// rigConfig is what a rig's configuration file says.
type rigConfig struct {
	plugins []pluginSpec
	// listener is the main listener's address (default 127.0.0.1:0).
	listener string
	// routePrefix is the route's path prefix (default /).
	routePrefix string
	// comment is written at the top of the file (changes the bytes, not
	// the configuration).
	comment string
	// dir makes the rig load its directory rather than its file (at start).
	dir bool
	// pool is the instance count per plugin (default 2).
	pool int
	// extra is appended to the file: more YAML documents, each starting
	// with "---".
	extra string
}

func (c rigConfig) render(r *rig) string {
	var b strings.Builder
	if c.comment != "" {
		b.WriteString("# " + c.comment + "\n")
	}
	listener := c.listener
	if listener == "" {
		listener = "127.0.0.1:0"
	}
	prefix := c.routePrefix
	if prefix == "" {
		prefix = "/"
	}
	fmt.Fprintf(&b, "apiVersion: sluice.dev/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\nspec: {listeners: [{name: main, address: %q}], admin: {address: \"127.0.0.1:0\"}, accessLog: {path: %q}, shutdownTimeout: 10s}\n", listener, filepath.Join(r.dir, "access.log"))
	fmt.Fprintf(&b, "---\napiVersion: sluice.dev/v1alpha1\nkind: Cluster\nmetadata: {name: up}\nspec: {endpoints: [{address: %q}]}\n", r.up.Listener.Addr().String())
	fmt.Fprintf(&b, "---\napiVersion: sluice.dev/v1alpha1\nkind: Route\nmetadata: {name: all}\nspec: {match: {path: {prefix: %q}}, cluster: up}\n", prefix)
	for _, p := range c.plugins {
		cfg := pluginConfig(p)
		fmt.Fprintf(&b, "---\napiVersion: extensions.higress.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: %s}\nspec:\n  url: %q\n  defaultConfig: %s\n",
			p.name, "file://"+filepath.Join(r.dir, string(p.mod)), cfg)
	}
	b.WriteString(c.extra)
	return b.String()
}

// pluginConfig renders the JSON configuration of p for its module.
func pluginConfig(p pluginSpec) string {
	if p.raw != "" {
		return p.raw
	}
	var v any
	switch {
	case p.mod == hello && p.reject:
		v = map[string]any{"header": ""}
	case p.mod == hello:
		v = map[string]any{"header": "x-cfg", "value": p.value}
	case p.reject:
		v = map[string]any{"on": map[string]any{"request_headers": []any{map[string]any{"op": "no-such-op"}}}}
	default:
		set := func(v string) []any { return []any{map[string]any{"op": "set_header", "key": "x-cfg", "value": v}} }
		v = map[string]any{"on": map[string]any{
			"request_headers":  set(p.value),
			"response_headers": set(p.value),
			"response_body":    []any{map[string]any{"op": "append_body", "value": "|" + p.value + "\n"}},
		}}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// rig is a running gateway loaded from a configuration file, in front of
// an upstream that echoes the x-cfg request header as x-seen-cfg and
// streams slow server-sent events on /sse.
type rig struct {
	t    testing.TB
	dir  string
	path string
	app  *app.App
	up   *httptest.Server
	logs *lockedBuffer
	cfg  rigConfig
	http *http.Client

	// sse releases the events of /sse streams: each receive sends one.
	sse chan struct{}
}

func newRig(t testing.TB, cfg rigConfig) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), logs: &lockedBuffer{}, sse: make(chan struct{}),
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: waitLimit}}
	r.up = httptest.NewServer(http.HandlerFunc(r.upstream))
	t.Cleanup(r.up.Close)
	for name, data := range map[module][]byte{probe: probeWasm, hello: helloWasm, broken: []byte("this is not a wasm module")} {
		if err := os.WriteFile(filepath.Join(r.dir, string(name)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.path = filepath.Join(r.dir, "sluice.yaml")
	r.cfg = cfg
	r.writeFile(cfg.render(r))
	snap, err := config.Load(r.path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	paths := []string{r.path}
	if cfg.dir {
		paths = []string{r.dir}
	}
	pool := cfg.pool
	if pool == 0 {
		pool = 2
	}
	a, err := app.New(context.Background(), snap, app.Options{Logger: logger, WasmCacheDir: cacheDir, PoolSize: pool, ConfigPaths: paths})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.app = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("=== gateway log\n%s", r.logs.String())
		}
	})
	return r
}

func (r *rig) upstream(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("X-Seen-Cfg", req.Header.Get("X-Cfg"))
	for _, h := range []string{"X-A-Req", "X-B-Req"} { // plugin chain tests
		if v := req.Header.Get(h); v != "" {
			w.Header().Set("X-Seen-"+strings.TrimSuffix(strings.TrimPrefix(h, "X-"), "-Req"), v)
		}
	}
	if req.URL.Path == "/sse" {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fl.Flush()
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		for i := 0; i < n; i++ {
			select {
			case <-r.sse:
			case <-req.Context().Done():
				return
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			fl.Flush()
		}
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// writeFile replaces the configuration file in place.
func (r *rig) writeFile(s string) {
	r.t.Helper()
	if err := os.WriteFile(r.path, []byte(s), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// set writes cfg to the configuration file (not reloaded).
func (r *rig) set(cfg rigConfig) {
	r.cfg = cfg
	r.writeFile(cfg.render(r))
}

// reload writes cfg and reloads.
func (r *rig) reload(cfg rigConfig) (app.ReloadResult, error) {
	r.set(cfg)
	return r.app.Reload(context.Background())
}

func (r *rig) url(path string) string {
	return "http://" + r.app.Gateway().Addr("main") + path
}

// seen is what one request observed.
type seen struct {
	status  int
	reqCfg  string // x-cfg as the upstream saw it (request phase)
	respCfg string // x-cfg on the response (response phase)
	body    string
}

func (r *rig) get(path string) (seen, error) {
	resp, err := r.http.Get(r.url(path))
	if err != nil {
		return seen{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return seen{}, err
	}
	return seen{status: resp.StatusCode, reqCfg: resp.Header.Get("X-Seen-Cfg"), respCfg: resp.Header.Get("X-Cfg"), body: string(body)}, nil
}

func (r *rig) mustGet(path string) seen {
	r.t.Helper()
	s, err := r.get(path)
	if err != nil {
		r.t.Fatal(err)
	}
	if s.status != http.StatusOK {
		r.t.Fatalf("GET %s: %d %s", path, s.status, s.body)
	}
	return s
}

// consistent checks that one request saw one configuration in every
// phase, and returns it.
func consistent(s seen) (string, error) {
	if s.status != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", s.status, s.body)
	}
	if s.reqCfg != s.respCfg {
		return "", fmt.Errorf("request phase saw %q, response phase %q", s.reqCfg, s.respCfg)
	}
	switch {
	case strings.HasPrefix(s.respCfg, "p-"):
		tags := strings.Split(strings.TrimSuffix(strings.TrimPrefix(s.body, "ok"), "\n"), "\n")
		for _, tag := range tags {
			if tag != "|"+s.respCfg {
				return "", fmt.Errorf("probe %q: body %q, want every chunk tagged with the same value", s.respCfg, s.body)
			}
		}
	case strings.HasPrefix(s.respCfg, "h-"):
		if s.body != "ok" {
			return "", fmt.Errorf("hello %q: body %q, want it untouched", s.respCfg, s.body)
		}
	default:
		return "", fmt.Errorf("no plugin ran: x-cfg %q", s.respCfg)
	}
	return s.respCfg, nil
}

// sseStream is a slow event stream in flight.
type sseStream struct {
	resp   *http.Response
	rd     *bufio.Reader
	header string
}

// openSSE starts a /sse stream of n events; each event is released by a
// send on r.sse.
func (r *rig) openSSE(n int) (*sseStream, error) {
	resp, err := r.http.Get(r.url(fmt.Sprintf("/sse?n=%d", n)))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("sse: status %d", resp.StatusCode)
	}
	return &sseStream{resp: resp, rd: bufio.NewReader(resp.Body), header: resp.Header.Get("X-Cfg")}, nil
}

// next releases one event and returns the tag the probe appended to it
// ("|value"; "" for a plugin that does not tag bodies).
func (r *rig) next(s *sseStream) (string, error) {
	select {
	case r.sse <- struct{}{}:
	case <-time.After(waitLimit):
		return "", fmt.Errorf("the upstream did not take the event")
	}
	lines := 2
	if strings.HasPrefix(s.header, "p-") {
		lines = 3
	}
	var last string
	for i := 0; i < lines; i++ {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("sse line %d: %q: %w", i, line, err)
		}
		if i == 0 && !strings.HasPrefix(line, "data: ") {
			return "", fmt.Errorf("sse: want an event, got %q", line)
		}
		last = strings.TrimSuffix(line, "\n")
	}
	if lines == 2 {
		return "", nil
	}
	return last, nil
}

// finish reads the rest of the stream.
func (s *sseStream) finish() (string, error) {
	defer s.resp.Body.Close()
	b, err := io.ReadAll(s.rd)
	return string(b), err
}

// metric returns the value of a gathered metric with the given labels.
func metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
