package conformance

import (
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// cacheDir is one wazero compilation cache shared by every test.
var cacheDir = filepath.Join(os.TempDir(), "sluice-conformance-wasm-cache")

// gw is a gateway running in-process for one test.
type gw struct {
	t      *testing.T
	app    *app.App
	URL    string // http://listener
	Admin  string // http://admin
	logs   *syncBuffer
	access string // access log file
}

// syncBuffer collects log output from several goroutines.
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

// wasmURL is the file:// URL of a test plugin (see test/plugins/README.md).
func wasmURL(t testing.TB, name string) string {
	return "file://" + wasmtest.Path(t, name)
}

// startGateway runs the gateway on the given resources (Cluster, Route,
// WasmPlugin documents; a Gateway document is added). "{{wasm NAME}}" in
// the YAML is replaced by the plugin's file:// URL. On failure, the
// gateway log and access log are dumped.
func startGateway(t *testing.T, resources string, opts ...func(*app.Options)) *gw {
	t.Helper()
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	for {
		i := strings.Index(resources, "{{wasm ")
		if i < 0 {
			break
		}
		j := strings.Index(resources[i:], "}}")
		name := strings.TrimSpace(resources[i+len("{{wasm ") : i+j])
		resources = resources[:i] + wasmURL(t, name) + resources[i+j+2:]
	}
	yaml := fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: conformance}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: %q}
  shutdownTimeout: 5s
---
%s`, access, resources)
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(file)
	if err != nil {
		t.Fatalf("config:\n%v\n--- yaml ---\n%s", err, yaml)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := app.Options{Logger: logger, WasmCacheDir: cacheDir, PoolSize: 2, LogLevel: func() slog.Level { return slog.LevelInfo }}
	for _, f := range opts {
		f(&o)
	}
	a, err := app.New(context.Background(), snap, o)
	if err != nil {
		t.Fatalf("app: %v\n--- log ---\n%s", err, logs.String())
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v\n--- log ---\n%s", err, logs.String())
	}
	g := &gw{t: t, app: a, URL: "http://" + a.Gateway().Addr("main"), Admin: "http://" + a.AdminAddr(), logs: logs, access: access}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("--- gateway log ---\n%s", logs.String())
			if b, err := os.ReadFile(access); err == nil {
				t.Logf("--- access log ---\n%s", b)
			}
		}
	})
	return g
}

// AccessLog returns the parsed access-log lines written so far.
func (g *gw) AccessLog() []map[string]any {
	g.t.Helper()
	b, err := os.ReadFile(g.access)
	if err != nil {
		g.t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			g.t.Fatalf("access log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// Do sends a request and returns status, headers and body.
func (g *gw) Do(method, path string, body string, headers ...string) (*http.Response, string) {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

// seen is one request an upstream received.
type seen struct {
	Method, Path, Host string
	Header             http.Header
	Body               string
}

// upstream is a recording HTTP server.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
	// Handle, when set, answers instead of the default JSON echo.
	Handle func(w http.ResponseWriter, r *http.Request, body []byte)
}

// newUpstream starts a recording upstream. By default it answers 200 with
// a JSON object echoing method, path and body, plus header x-upstream: yes.
func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header.Clone(), Body: string(b)})
		h := u.Handle
		u.mu.Unlock()
		if h != nil {
			h(w, r, b)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "path": r.URL.RequestURI(), "body": string(b)})
	}))
	t.Cleanup(u.Close)
	return u
}

// Addr is host:port.
func (u *upstream) Addr() string { return strings.TrimPrefix(u.URL, "http://") }

// Requests returns what the upstream received so far.
func (u *upstream) Requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// clusterAndRoute is the usual resources: cluster "up" → u, route "main"
// catching everything.
func clusterAndRoute(u *upstream) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: up}
spec:
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: main}
spec:
  cluster: up
`, u.Addr())
}

// plugin renders a WasmPlugin document. cfg is marshalled to JSON (which
// is valid YAML) as defaultConfig; extra is appended under spec verbatim
// (indented by the caller with two spaces).
func plugin(name, wasm string, cfg any, extra string) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: %s}
spec:
  url: "{{wasm %s}}"
  defaultConfig: %s
%s`, name, wasm, b, extra)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
