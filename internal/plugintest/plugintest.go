// Package plugintest runs a plugin of plugins/<name> as wasm in the real
// gateway for that plugin's end-to-end tests: it builds the plugin the way
// `make plugins` does, once per test process, and starts the gateway
// in-process on port 0 with the plugin found through builtin:// resolution.
//
// It is test support only and must not be imported by production code.
package plugintest

import (
	"bytes"
	"context"
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
	"github.com/sluicegw/sluice/internal/plugins"
)

// SyncBuffer collects log lines written from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	buildMu   sync.Mutex
	buildDirs = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	dir  string
	err  error
}

// Build builds the plugin in the current directory (the test's package,
// plugins/<name>) to <dir>/<name>.wasm with the command `make plugins`
// uses, once per process, and returns dir, laid out as $SLUICE_PLUGIN_DIR
// expects.
func Build(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	r := buildDirs[name]
	if r == nil {
		r = &buildResult{}
		buildDirs[name] = r
	}
	buildMu.Unlock()
	r.once.Do(func() {
		if r.dir, r.err = os.MkdirTemp("", "sluice-"+name+"-"); r.err != nil {
			return
		}
		r.err = buildPlugin(".", filepath.Join(r.dir, name+".wasm"))
	})
	if r.err != nil {
		t.Fatalf("building the plugin: %v", r.err)
	}
	return r.dir
}

// RunMain runs the tests and removes what Build wrote; use it as
// os.Exit(plugintest.RunMain(m)) in TestMain.
func RunMain(m *testing.M) int {
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	for _, r := range buildDirs {
		if r.dir != "" {
			_ = os.RemoveAll(r.dir)
		}
	}
	return code
}

// Gateway is a gateway running in-process for one test.
type Gateway struct {
	App       *app.App
	URL       string // http://<main listener>
	Logs      *SyncBuffer
	AccessLog string // access log file
}

// Start writes docs (a complete configuration whose Gateway has a
// listener named "main" and accessLog.path <dir>/access.log) to
// <dir>/sluice.yaml and runs the gateway on it with one instance per
// plugin. On failure the gateway log and access log are dumped.
func Start(t testing.TB, dir, docs string) *Gateway {
	t.Helper()
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(docs), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, docs)
	}
	logs := &SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), snap, app.Options{
		Logger: logger, PoolSize: 1,
		WasmCacheDir: filepath.Join(os.TempDir(), "sluice-plugin-e2e-wasm-cache"),
		LogLevel:     func() slog.Level { return slog.LevelInfo },
	})
	if err != nil {
		t.Fatalf("app: %v\n%s", err, logs)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	access := filepath.Join(dir, "access.log")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("--- gateway log ---\n%s", logs)
			if b, err := os.ReadFile(access); err == nil {
				t.Logf("--- access log ---\n%s", b)
			}
		}
	})
	return &Gateway{App: a, URL: "http://" + a.Gateway().Addr("main"), Logs: logs, AccessLog: access}
}

// PluginURL builds the plugin (see Build), points $SLUICE_PLUGIN_DIR at it
// for the test, and returns the file:// URL builtin:// resolution gives.
func PluginURL(t *testing.T, name string) string {
	t.Helper()
	t.Setenv(plugins.PluginDirEnv, Build(t, name))
	path, err := plugins.BuiltinPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + path
}

// Resources is the start of a configuration for Start: a Gateway with the
// "main" listener, an admin listener and the access log in dir, a cluster
// "llm" for upstreamURL and a route "chat" sending everything to it. The
// caller appends its WasmPlugin documents.
func Resources(dir, upstreamURL string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: %q}
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: llm}
spec:
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: chat}
spec:
  cluster: llm
`, filepath.Join(dir, "access.log"), strings.TrimPrefix(upstreamURL, "http://"))
}

// PostChat POSTs a JSON body to /v1/chat/completions with extra headers
// given as name, value pairs, and returns status and body.
func PostChat(t *testing.T, url, body string, headers ...string) (int, string) {
	t.Helper()
	resp, b := Do(t, http.MethodPost, url+"/v1/chat/completions", body, headers...)
	return resp.StatusCode, b
}

// Do sends method to url with body (JSON, when not empty) and extra
// headers given as name, value pairs, and returns the response (body
// closed) and its body.
func Do(t testing.TB, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Metrics returns the text of /metrics on the admin listener at adminAddr.
func Metrics(t testing.TB, adminAddr string) string {
	t.Helper()
	_, text := Do(t, http.MethodGet, "http://"+adminAddr+"/metrics", "")
	return text
}

// Request is one request as the recording upstream saw it.
type Request struct {
	Body   string
	Header http.Header
}

// Upstream answers like an OpenAI chat endpoint (a fixed completion) and
// records the requests it receives. Safe for concurrent use.
type Upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []Request
}

// NewUpstream starts a recording upstream, closed when the test ends.
func NewUpstream(t testing.TB) *Upstream {
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, Request{Body: string(b), Header: r.Header.Clone()})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}`)
	}))
	t.Cleanup(u.Close)
	return u
}

// Requests returns what the upstream received so far.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Bodies returns the bodies of the requests received so far.
func (u *Upstream) Bodies() []string {
	var out []string
	for _, r := range u.Requests() {
		out = append(out, r.Body)
	}
	return out
}

// PluginDoc is a WasmPlugin document for Start: the plugin name at url
// with the priority and config (a JSON object) as its defaultConfig.
func PluginDoc(name, url string, priority int, config string) string {
	return fmt.Sprintf(`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: %s}
spec:
  url: %q
  priority: %d
  defaultConfig: %s
`, name, url, priority, config)
}
