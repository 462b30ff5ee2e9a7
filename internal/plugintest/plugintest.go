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
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
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
		out := filepath.Join(r.dir, name+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
			return
		}
		fmt.Fprintf(os.Stderr, "built %s in %s\n", out, time.Since(start).Round(10*time.Millisecond))
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
