package wasmhost_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// Configuration versions: a Binding hands out streams on its own version's
// root context, whatever newer versions exist, starts that root on an
// instance that lacks it, and the version's roots retire once the binding
// is released and their streams have ended.

// verHost is a gateway whose chain the test sets, in front of an upstream
// that echoes x-cfg as x-seen-cfg and holds /hold requests until released.
type verHost struct {
	t     *testing.T
	rt    *wasmhost.Runtime
	svc   *wasmhost.Services
	mod   *wasmhost.Module
	logs  *verLog
	chain atomic.Pointer[[]gateway.FilterFactory]
	url   string

	arrived chan struct{}
	release chan struct{}
}

type verLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *verLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *verLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newVerHost(t *testing.T) *verHost {
	t.Helper()
	h := &verHost{t: t, logs: &verLog{}, arrived: make(chan struct{}, 16), release: make(chan struct{})}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Cfg", r.Header.Get("X-Cfg"))
		if r.URL.Path == "/hold" {
			h.arrived <- struct{}{}
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: filepath.Join(os.TempDir(), "sluice-bench-wasm-cache"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	h.mod, err = rt.Compile(ctx, wasmtest.Plugin(t, "go/probe"))
	if err != nil {
		t.Fatal(err)
	}
	h.svc = &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: logger, LogLevel: func() slog.Level { return slog.LevelInfo }}
	empty := []gateway.FilterFactory{}
	h.chain.Store(&empty)

	yaml := gatewayYAML(strings.TrimPrefix(up.URL, "http://"), "") + `---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: all}
spec:
  cluster: up
`
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, snap, app.Options{Logger: logger, Chain: func(*gateway.Stream) []gateway.FilterFactory { return *h.chain.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + a.Gateway().Addr("main")
	// Cleanups run last-in first-out: the gateway stops, then the runtime
	// closes (plugins register theirs in between).
	t.Cleanup(func() {
		_ = rt.Close(context.Background())
		if t.Failed() {
			t.Logf("--- log ---\n%s", h.logs.String())
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return h
}

// verConfig marks both phases of a request with tag and reports the root
// context the stream runs on.
func verConfig(tag string) []byte {
	return []byte(fmt.Sprintf(`{"on": {
  "request_headers": [{"op": "set_header", "key": "x-cfg", "value": %[1]q}],
  "response_headers": [{"op": "set_header", "key": "x-cfg-resp", "value": %[1]q},
                       {"op": "callback_arg", "arg": "root_id", "to": "header:x-root-id"}]
}}`, tag))
}

func (h *verHost) plugin(name string, pool int, failOpen bool, cfg []byte) *wasmhost.Plugin {
	h.t.Helper()
	p, err := wasmhost.NewPlugin(context.Background(), h.rt, h.mod, wasmhost.PluginSpec{Name: name, Config: cfg, PoolSize: pool, FailOpen: failOpen}, h.svc)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func (h *verHost) setChain(fs ...gateway.FilterFactory) { h.chain.Store(&fs) }

// verSeen is what one request observed.
type verSeen struct {
	status    int
	req, resp string // the tag of the request and of the response phase
	root      string
	body      string
}

func (h *verHost) get(path string) verSeen {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return verSeen{status: resp.StatusCode, req: resp.Header.Get("X-Seen-Cfg"), resp: resp.Header.Get("X-Cfg-Resp"),
		root: resp.Header.Get("X-Root-Id"), body: string(body)}
}

// want checks that s ran on tag in both phases.
func (s verSeen) want(t *testing.T, what, tag string) {
	t.Helper()
	if s.status != http.StatusOK || s.req != tag || s.resp != tag {
		t.Fatalf("%s: status %d, request phase %q, response phase %q (body %q); want %q in both", what, s.status, s.req, s.resp, s.body, tag)
	}
}

func verEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onlyVersions reports whether every instance of p has exactly the root
// contexts of the versions want, with no stream attached.
func onlyVersions(p *wasmhost.Plugin, want ...uint64) bool {
	rv := wasmhost.RootVersions(p)
	if len(rv) == 0 {
		return false
	}
	exp := map[uint64]int{}
	for _, v := range want {
		exp[v] = 0
	}
	for _, m := range rv {
		if !maps.Equal(m, exp) {
			return false
		}
	}
	return true
}

func TestBindingKeepsItsConfigurationVersion(t *testing.T) {
	h := newVerHost(t)
	p := h.plugin("ver", 1, false, verConfig("v1"))
	b1 := p.Bind()
	h.setChain(b1)
	before := h.get("/before")
	before.want(t, "before the update", "v1")

	// A request of b1 in flight across the update and the release.
	held := make(chan verSeen, 1)
	go func() { held <- h.get("/hold") }()
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not reach the upstream")
	}

	b2, err := p.UpdateConfig(context.Background(), verConfig("v2"))
	if err != nil {
		t.Fatal(err)
	}
	if b1.Version() != 1 || b2.Version() != 2 {
		t.Fatalf("versions %d and %d, want 1 and 2", b1.Version(), b2.Version())
	}
	// Same instance (pool of one): a filter of the old binding created
	// after the update runs v1, one of the new binding v2.
	old := h.get("/old")
	old.want(t, "old binding after the update", "v1")
	if old.root != before.root {
		t.Errorf("old binding after the update ran on root %s, before on %s", old.root, before.root)
	}
	h.setChain(b2)
	fresh := h.get("/new")
	fresh.want(t, "new binding", "v2")
	if fresh.root == before.root {
		t.Errorf("the new binding ran on the v1 root %s", fresh.root)
	}
	h.setChain(p)
	h.get("/plugin").want(t, "the plugin itself (newest version)", "v2")
	h.setChain(b1)
	h.get("/old-again").want(t, "old binding, again", "v1")
	h.setChain(b2)

	if rv := wasmhost.RootVersions(p); len(rv) != 1 {
		t.Fatalf("instances %v, want 1", rv)
	} else {
		for _, m := range rv {
			if want := map[uint64]int{1: 1, 2: 0}; !maps.Equal(m, want) {
				t.Fatalf("roots (version: streams) %v, want %v", m, want)
			}
		}
	}
	// Released while its stream is in flight: the v1 root stays until the
	// stream ends.
	b1.Release()
	b1.Release() // idempotent
	time.Sleep(50 * time.Millisecond)
	for _, m := range wasmhost.RootVersions(p) {
		if m[1] != 1 {
			t.Fatalf("the v1 root retired while its stream was in flight: %v", m)
		}
	}
	close(h.release)
	select {
	case s := <-held:
		s.want(t, "request in flight across the update", "v1")
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not finish")
	}
	verEventually(t, "only the v2 root left", func() bool { return onlyVersions(p, 2) })
	if n := wasmhost.GuestContexts(p); n != 1 {
		t.Errorf("%d guest contexts left, want 1 (the v2 root)", n)
	}
	h.get("/end").want(t, "after the retirement", "v2")
	b2.Release() // the newest version stays, released or not
	h.get("/end2").want(t, "after releasing the newest", "v2")
	if !onlyVersions(p, 2) {
		t.Errorf("roots %v, want only v2", wasmhost.RootVersions(p))
	}
}

func TestBindingStartsItsRootOnAReplacementInstance(t *testing.T) {
	h := newVerHost(t)
	p := h.plugin("lazy", 1, false, verConfig("v1"))
	b1 := p.Bind()
	b2, err := p.UpdateConfig(context.Background(), verConfig("v2"))
	if err != nil {
		t.Fatal(err)
	}
	var first int
	for id := range wasmhost.RootVersions(p) {
		first = id
	}
	wasmhost.KillInstance(p, first)
	verEventually(t, "the replacement instance", func() bool {
		rv := wasmhost.RootVersions(p)
		_, dead := rv[first]
		return len(rv) == 1 && !dead
	})
	// The replacement configured only the newest version.
	if !onlyVersions(p, 2) {
		t.Fatalf("replacement roots %v, want only v2", wasmhost.RootVersions(p))
	}
	h.setChain(b2)
	h.get("/new").want(t, "new binding on the replacement", "v2")
	h.setChain(b1)
	h.get("/old").want(t, "old binding on the replacement", "v1")
	if !strings.Contains(h.logs.String(), "root context started for an older configuration version") {
		t.Error("no log line for the lazily started root")
	}
	if !onlyVersions(p, 1, 2) {
		t.Fatalf("roots %v, want v1 and v2", wasmhost.RootVersions(p))
	}
	h.get("/old2").want(t, "old binding, second request", "v1")
	if n := strings.Count(h.logs.String(), "root context started for an older configuration version"); n != 1 {
		t.Errorf("the v1 root was started %d times on the replacement, want once", n)
	}
	b1.Release()
	verEventually(t, "the lazily started v1 root to retire", func() bool { return onlyVersions(p, 2) })
	h.setChain(b2)
	h.get("/after").want(t, "after the release", "v2")

	// A version whose root cannot start on the instance: the stream gets
	// the plugin's fail strategy, and nothing of the version stays.
	bad := wasmhost.BindUnconfigured(p, []byte(`{"unknown_field": true}`))
	h.setChain(bad)
	if s := h.get("/bad"); s.status != http.StatusServiceUnavailable || !strings.Contains(s.body, "wasm_fail_stream") {
		t.Errorf("fail-close plugin, root of the version rejected: status %d body %q, want 503 wasm_fail_stream", s.status, s.body)
	}
	bad.Release()
	if !onlyVersions(p, 2) {
		t.Errorf("roots %v after a failed start, want only v2", wasmhost.RootVersions(p))
	}
	open := h.plugin("lazy-open", 1, true, verConfig("o1"))
	badOpen := wasmhost.BindUnconfigured(open, []byte(`{"unknown_field": true}`))
	h.setChain(badOpen)
	if s := h.get("/bad-open"); s.status != http.StatusOK || s.req != "" {
		t.Errorf("fail-open plugin, root of the version rejected: status %d, x-cfg %q; want 200 and the plugin skipped", s.status, s.req)
	}
	badOpen.Release()
	if !onlyVersions(open, 1) {
		t.Errorf("roots %v after a failed start, want only v1", wasmhost.RootVersions(open))
	}
}

// TestConfigVersionsDoNotLeak: many updates, each binding released once
// the next one serves, leave one root context per instance.
func TestConfigVersionsDoNotLeak(t *testing.T) {
	h := newVerHost(t)
	p := h.plugin("leak", 2, false, verConfig("v1"))
	b := p.Bind()
	h.setChain(b)
	const updates = 20
	for i := 2; i <= updates+1; i++ {
		tag := fmt.Sprintf("v%d", i)
		next, err := p.UpdateConfig(context.Background(), verConfig(tag))
		if err != nil {
			t.Fatal(err)
		}
		h.get("/old").want(t, "previous binding", fmt.Sprintf("v%d", i-1))
		h.setChain(next)
		b.Release()
		b = next
		h.get("/new").want(t, "new binding", tag)
	}
	verEventually(t, "one root per instance", func() bool { return onlyVersions(p, updates+1) })
	if n := wasmhost.GuestContexts(p); n != 2 {
		t.Errorf("%d guest contexts in 2 instances, want 2", n)
	}
	b.Release()
}
