package wasmhost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// TestCompileConcurrentWarmCache: plugins sharing one module load in
// parallel (the plugin manager does that) from a warm on-disk cache. Every
// caller gets the same compiled module and can instantiate it at once.
// Before Compile waited for a running compilation of the same bytes,
// wazero handed the second caller a module whose entry trampolines were not
// built yet and instantiating it panicked in wazero's NewFunction.
func TestCompileConcurrentWarmCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := wasmtest.Plugin(t, "c/addheader")
	logger := slog.New(slog.DiscardHandler)
	warm, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: dir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := warm.Compile(ctx, wasm); err != nil {
		t.Fatal(err)
	}
	if err := warm.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: dir, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		svc := &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: logger, LogLevel: func() slog.Level { return slog.LevelInfo }}
		const n = 8
		mods := make([]*wasmhost.Module, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				m, err := rt.Compile(ctx, wasm)
				if err != nil {
					t.Errorf("round %d caller %d: %v", round, i, err)
					return
				}
				mods[i] = m
				p, err := wasmhost.NewPlugin(ctx, rt, m, wasmhost.PluginSpec{Name: "p", RootID: "p", Config: []byte(`{}`), PoolSize: 1}, svc)
				if err != nil {
					t.Errorf("round %d caller %d: plugin: %v", round, i, err)
					return
				}
				p.Close(ctx)
			})
		}
		wg.Wait()
		for i := 1; i < n; i++ {
			if mods[i] != mods[0] {
				t.Errorf("round %d: caller %d got another compiled module than caller 0", round, i)
			}
		}
		if err := rt.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompileLoopGuard: with the loop guard (the default) a module is
// instrumented; one the rewrite refuses (here: it already imports the
// guard's yield function) compiles with wazero's own guard in the fallback
// runtime and still runs; without the guard the module is left alone.
// Each kind of module starts a plugin (instantiate, configure).
func TestCompileLoopGuard(t *testing.T) {
	ctx := context.Background()
	wasm := wasmtest.Plugin(t, "c/addheader")
	refused, err := loopguard.Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loopguard.Instrument(refused); err == nil {
		t.Fatal("instrumenting twice succeeded; the fallback case needs a module the rewrite refuses")
	}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	for _, tc := range []struct {
		name    string
		noGuard bool
		wasm    []byte
		want    wasmhost.Guard
	}{
		{"instrumented", false, wasm, wasmhost.GuardInstrumented},
		{"fallback", false, refused, wasmhost.GuardWazero},
		{"off", true, wasm, wasmhost.GuardNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: t.TempDir(), Logger: logger, NoLoopGuard: tc.noGuard})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			m, err := rt.Compile(ctx, tc.wasm)
			if err != nil {
				t.Fatal(err)
			}
			if m.Guard != tc.want {
				t.Errorf("guard %v, want %v", m.Guard, tc.want)
			}
			for _, imp := range m.Imports() {
				if strings.HasPrefix(imp, loopguard.ImportModule+".") && tc.want == wasmhost.GuardInstrumented {
					t.Errorf("Imports lists %s, which the loop guard added", imp)
				}
			}
			svc := &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: logger, LogLevel: func() slog.Level { return slog.LevelInfo }}
			p, err := wasmhost.NewPlugin(ctx, rt, m, wasmhost.PluginSpec{Name: "p", RootID: "p", Config: []byte(`{}`), PoolSize: 1}, svc)
			if err != nil {
				t.Fatalf("plugin: %v", err)
			}
			p.Close(ctx)
		})
	}
	if !strings.Contains(logs.String(), "using wazero's slower guard") {
		t.Errorf("the fallback was not logged:\n%s", logs)
	}
}

// TestCompileHugeCount: a module of a few bytes whose import section claims
// four billion entries is refused with a reason; handed to wazero v1.12 as
// it is, it kills the process ("fatal error: runtime: out of memory").
func TestCompileHugeCount(t *testing.T) {
	ctx := context.Background()
	wasm := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
		0x02, 0x05, 0xf0, 0xff, 0xff, 0xff, 0x0f} // import section: 4294967280 imports in 5 bytes
	for _, noGuard := range []bool{false, true} {
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{Logger: slog.New(slog.DiscardHandler), NoLoopGuard: noGuard})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rt.Compile(ctx, wasm)
		if err == nil || !strings.Contains(err.Error(), "the import section announces 4294967280 entries in 5 bytes") {
			t.Errorf("loop guard off %v: %v, want the count refused", noGuard, err)
		}
		_ = rt.Close(ctx)
	}
	if _, err := wasmhost.Inspect(ctx, wasm); err == nil || !strings.Contains(err.Error(), "announces") {
		t.Errorf("inspect: %v, want the count refused", err)
	}
}

// TestCompileLoopGuardCache checks the on-disk cache of rewritten modules:
// a compile stores the rewrite, the next runtime with the same cache
// directory uses it instead of rewriting, and a corrupt entry is rewritten.
func TestCompileLoopGuardCache(t *testing.T) {
	ctx := context.Background()
	wasm := wasmtest.Plugin(t, "c/addheader")
	dir := t.TempDir()
	compile := func() *wasmhost.Module {
		t.Helper()
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rt.Close(ctx) })
		m, err := rt.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	compile()
	sum := sha256.Sum256(wasm)
	entry := filepath.Join(dir, "loopguard", fmt.Sprintf("%x-v%d.wasm", sum, loopguard.Version))
	stored, err := os.ReadFile(entry)
	if err != nil {
		t.Fatalf("no cached rewrite: %v", err)
	}
	want, err := loopguard.Instrument(wasm, wasmhost.Dispatched...)
	if err != nil {
		t.Fatal(err)
	}
	check := sha256.Sum256(want)
	if !bytes.Equal(stored, append(check[:], want...)) {
		t.Fatal("the cached rewrite is not checksum + Instrument(wasm)")
	}

	// Plant a different module, correctly checksummed, under the same key:
	// a compile that reads the cache exports its function.
	marker := markerModule("cache_marker")
	planted, err := loopguard.Instrument(marker)
	if err != nil {
		t.Fatal(err)
	}
	psum := sha256.Sum256(planted)
	if err := os.WriteFile(entry, append(psum[:], planted...), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := compile(); !slices.Contains(m.Exports(), "cache_marker") {
		t.Fatalf("the second compile did not use the cached rewrite: exports %v", m.Exports())
	}

	// A corrupt entry is not used: the module is rewritten and stored again.
	planted[len(planted)-1] ^= 0xff
	if err := os.WriteFile(entry, append(psum[:], planted...), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := compile(); slices.Contains(m.Exports(), "cache_marker") || !slices.Contains(m.Exports(), "proxy_on_request_headers") {
		t.Fatalf("a corrupt cached rewrite was used: exports %v", m.Exports())
	}
	if stored, err := os.ReadFile(entry); err != nil || !bytes.Equal(stored, append(check[:], want...)) {
		t.Fatalf("the corrupt entry was not replaced (%v)", err)
	}
}

// markerModule assembles the smallest module Compile accepts, exporting one
// function under name besides the ABI marker, "malloc" and "memory":
// (module (memory 1) (func) (export "proxy_abi_version_0_2_1" (func 0))
// (export "malloc" (func 0)) (export name (func 0)) (export "memory" (memory 0)))
func markerModule(name string) []byte {
	var exports []byte
	add := func(n string, kind, idx byte) {
		exports = append(append(append(exports, byte(len(n))), n...), kind, idx)
	}
	add("proxy_abi_version_0_2_1", 0, 0)
	add("malloc", 0, 0)
	add(name, 0, 0)
	add("memory", 2, 0)
	exports = append([]byte{4}, exports...)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 1, 4, 1, 0x60, 0, 0) // type: () -> ()
	m = append(m, 3, 2, 1, 0)          // function 0 of type 0
	m = append(m, 5, 3, 1, 0, 1)       // memory: min 1 page
	m = append(append(m, 7, byte(len(exports))), exports...)
	return append(m, 10, 4, 1, 2, 0, 0x0b) // code: empty body
}

// TestSweep: compiled modules stay while a plugin built on them is open
// (closed or drained), are dropped by Sweep afterwards, and compile again
// on demand.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	wasm := wasmtest.Plugin(t, "c/addheader")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	svc := &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: logger, LogLevel: func() slog.Level { return slog.LevelInfo }}
	newPlugin := func(m *wasmhost.Module) *wasmhost.Plugin {
		t.Helper()
		p, err := wasmhost.NewPlugin(ctx, rt, m, wasmhost.PluginSpec{Name: "p", Config: []byte(`{}`), PoolSize: 1}, svc)
		if err != nil {
			t.Fatalf("plugin: %v", err)
		}
		return p
	}
	m1, err := rt.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	closed, drained := newPlugin(m1), newPlugin(m1)
	if n := rt.Sweep(ctx); n != 0 {
		t.Fatalf("Sweep dropped %d modules while two plugins use the only one", n)
	}
	if again, _ := rt.Compile(ctx, wasm); again != m1 {
		t.Fatal("a module in use was compiled again")
	}
	closed.Close(ctx)
	if n := rt.Sweep(ctx); n != 0 {
		t.Fatalf("Sweep dropped %d modules while a plugin still uses the only one", n)
	}
	drained.Drain(ctx)
	if n := rt.Sweep(ctx); n != 1 {
		t.Fatalf("Sweep dropped %d modules after their plugins closed, want 1", n)
	}
	m2, err := rt.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if m2 == m1 {
		t.Fatal("Compile returned the dropped module")
	}
	newPlugin(m2).Close(ctx) // instances run on the recompiled module

	// A module no plugin was ever built on goes at the next sweep.
	if _, err := rt.Compile(ctx, markerModule("unused")); err != nil {
		t.Fatal(err)
	}
	if n := rt.Sweep(ctx); n != 2 {
		t.Fatalf("Sweep dropped %d modules, want 2 (one closed plugin's, one never used)", n)
	}
}
