package plugins

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), sub)
}

// TestUpdateBindsEachSetToItsConfigurationVersion: each set hands out the
// configuration version it was built with; a version is released (its
// roots end) when the last set holding it closes; a set built and then
// discarded does not change what its successor compares against.
func TestUpdateBindsEachSetToItsConfigurationVersion(t *testing.T) {
	ctx := context.Background()
	logs := &syncLog{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{Logger: logger, CacheDir: filepath.Join(os.TempDir(), "sluice-bench-wasm-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m := NewManager(Options{Runtime: rt, PoolSize: 1, Logger: logger, Fetcher: &Fetcher{CacheDir: "off", Logger: logger},
		Services: &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: logger, LogLevel: func() slog.Level { return slog.LevelInfo }}})
	wasm := wasmtest.Path(t, "go/probe")
	snap := func(tag string) *config.Snapshot {
		t.Helper()
		yaml := fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: versions}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {disabled: true}
  accessLog: {path: "off"}
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: p}
spec:
  url: file://%s
  defaultConfig: {name: %q, on: {done: [{op: callback_arg, arg: root_id, to: "log:root_done"}]}}
`, wasm, tag)
		s, err := config.Parse("versions.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	binding := func(s *Set) *wasmhost.Binding {
		t.Helper()
		if s.entries[0].status.State != StateReady {
			t.Fatalf("plugin not ready: %+v", s.entries[0].status)
		}
		b, ok := s.entries[0].factory.(*wasmhost.Binding)
		if !ok {
			t.Fatalf("factory %T, want *wasmhost.Binding", s.entries[0].factory)
		}
		return b
	}
	update := func(prev *Set, tag, want string) *Set {
		t.Helper()
		s, outs := m.Update(ctx, prev, snap(tag))
		if len(outs) != 1 || outs[0].Action != want {
			t.Fatalf("update to %s: %+v, want %s", tag, outs, want)
		}
		return s
	}
	done := func(tag string) int { return logs.count("probe[" + tag + "]: root_done=") }

	s1 := m.Load(ctx, snap("v1"))
	defer s1.Close(ctx)
	b1 := binding(s1)
	s2 := update(s1, "v2", OutcomeConfigUpdated)
	defer s2.Close(ctx)
	b2 := binding(s2)
	if b1.Plugin() != b2.Plugin() || b1.Version() != 1 || b2.Version() != 2 {
		t.Fatalf("bindings: plugin shared %v, versions %d and %d; want one plugin, versions 1 and 2", b1.Plugin() == b2.Plugin(), b1.Version(), b2.Version())
	}
	if binding(s1) != b1 || !strings.Contains(string(b1.Config()), `"v1"`) {
		t.Fatalf("the previous set changed its binding: %s", b1.Config())
	}
	s3 := update(s2, "v2", OutcomeUnchanged)
	defer s3.Close(ctx)
	if binding(s3) != b2 {
		t.Fatal("an unchanged plugin did not keep its set's binding")
	}
	if n := done("v1"); n != 0 {
		t.Fatalf("v1 roots retired (%d) while s1 holds them", n)
	}
	s1.Close(ctx)
	if n := done("v1"); n != 1 {
		t.Fatalf("v1 roots retired: %d, want 1 once s1 closed", n)
	}
	s2.Close(ctx) // s3 still holds v2
	if n := done("v2"); n != 0 {
		t.Fatalf("v2 roots retired (%d) while s3 holds them", n)
	}

	// A set built and discarded (never swapped in) adds a newer version;
	// the next update still compares with what s3 serves.
	s4 := update(s3, "v4", OutcomeConfigUpdated)
	s4.Close(ctx)
	s5 := update(s3, "v2", OutcomeUnchanged)
	defer s5.Close(ctx)
	if binding(s5) != b2 {
		t.Fatalf("after a discarded update: binding version %d, want 2", binding(s5).Version())
	}
	if n := done("v4"); n != 0 {
		t.Fatalf("the newest version retired (%d) though new instances configure it", n)
	}
	s3.Close(ctx)
	s6 := update(s5, "v6", OutcomeConfigUpdated)
	defer s6.Close(ctx)
	s5.Close(ctx)
	if n := done("v2"); n != 1 {
		t.Fatalf("v2 roots retired: %d, want 1 once the last set holding it closed", n)
	}
	if n := done("v4"); n != 1 {
		t.Fatalf("v4 (superseded, never held) roots retired: %d, want 1", n)
	}
}
