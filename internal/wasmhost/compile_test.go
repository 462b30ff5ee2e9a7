package wasmhost_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/wasmhost"
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
