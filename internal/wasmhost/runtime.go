package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// RuntimeOptions configure the shared wazero runtime.
type RuntimeOptions struct {
	// CacheDir holds wazero's compilation cache; "" disables the on-disk cache.
	CacheDir string
	// MemoryLimitPages caps each instance's linear memory (64 KiB pages).
	// Default 16384 (1 GiB).
	MemoryLimitPages uint32
	// Watchdog, when > 0, bounds every guest call; a call that runs longer
	// kills its instance (treated as a crash). Off by default: see
	// docs/RATIONALE.md. Without it a looping guest keeps its instance
	// (and its pinned streams) but never stalls the rest of the process.
	Watchdog time.Duration
	// NoLoopGuard drops the preemption checks wazero compiles into guest
	// loops (see docs/RATIONALE.md). Faster guest calls, but a guest stuck
	// in a loop then freezes the whole process at the next garbage
	// collection. Only for fully trusted plugins; incompatible with Watchdog.
	NoLoopGuard bool
	Logger      *slog.Logger
}

// Runtime is one wazero runtime with the Proxy-Wasm host modules
// instantiated, shared by every plugin. Safe for concurrent use.
type Runtime struct {
	r      wazero.Runtime
	cache  wazero.CompilationCache
	opts   RuntimeOptions
	logger *slog.Logger

	mu       sync.Mutex
	compiled map[string]*Module       // by sha256
	inflight map[string]chan struct{} // compilations running, by sha256
}

// NewRuntime creates the runtime and instantiates the env, WASI and
// wasi_unstable host modules.
func NewRuntime(ctx context.Context, opts RuntimeOptions) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MemoryLimitPages == 0 {
		opts.MemoryLimitPages = 16384
	}
	// CloseOnContextDone is on even without a watchdog: the checks it
	// compiles into loops are the only points where Go can preempt a
	// goroutine running guest code. Without them one guest stuck in a loop
	// blocks every garbage collection's stop-the-world, and with it the
	// whole process. The deadline itself is applied only with a watchdog.
	cfg := wazero.NewRuntimeConfig().WithMemoryLimitPages(opts.MemoryLimitPages).WithCloseOnContextDone(!opts.NoLoopGuard || opts.Watchdog > 0)
	rt := &Runtime{opts: opts, logger: opts.Logger, compiled: map[string]*Module{}, inflight: map[string]chan struct{}{}}
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("wasm cache dir: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm cache dir: %w", err)
		}
		rt.cache = c
		cfg = cfg.WithCompilationCache(c)
	}
	rt.r = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt.r); err != nil {
		_ = rt.r.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	// AssemblyScript's runtime imports the old module name for proc_exit.
	if _, err := rt.r.NewHostModuleBuilder("wasi_unstable").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(procExitUnstable), []api.ValueType{api.ValueTypeI32}, nil).
		Export("proc_exit").Instantiate(ctx); err != nil {
		_ = rt.r.Close(ctx)
		return nil, fmt.Errorf("wasi_unstable: %w", err)
	}
	if err := instantiateEnv(ctx, rt.r); err != nil {
		_ = rt.r.Close(ctx)
		return nil, fmt.Errorf("env host module: %w", err)
	}
	return rt, nil
}

func procExitUnstable(ctx context.Context, m api.Module, stack []uint64) {
	_ = m.CloseWithExitCode(ctx, uint32(stack[0]))
}

// Close releases the runtime and everything compiled in it.
func (rt *Runtime) Close(ctx context.Context) error {
	err := rt.r.Close(ctx)
	if rt.cache != nil {
		err = errors.Join(err, rt.cache.Close(ctx))
	}
	return err
}

// Compile validates and compiles wasm once per sha256; later calls with the
// same bytes return the same Module. Concurrent calls with the same bytes
// wait for the first: wazero must never compile one module twice at once,
// because on an on-disk cache hit it publishes the module to other callers
// before its entry trampolines exist (an instance created in that window
// panics in wazero's NewFunction).
func (rt *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	sum := sha256.Sum256(wasm)
	key := hex.EncodeToString(sum[:])
	for {
		rt.mu.Lock()
		if m, ok := rt.compiled[key]; ok {
			rt.mu.Unlock()
			return m, nil
		}
		wait, busy := rt.inflight[key]
		if !busy {
			rt.inflight[key] = make(chan struct{})
			rt.mu.Unlock()
			break
		}
		rt.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("compile: %w", ctx.Err())
		}
	}
	m, err := rt.compile(ctx, key, wasm)
	rt.mu.Lock()
	if err == nil {
		rt.compiled[key] = m
	}
	close(rt.inflight[key])
	delete(rt.inflight, key)
	rt.mu.Unlock()
	return m, err
}

// compile runs wazero's compiler for one module; Compile makes sure it runs
// once at a time per key.
func (rt *Runtime) compile(ctx context.Context, key string, wasm []byte) (*Module, error) {
	start := time.Now()
	cm, err := rt.r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	m, err := newModule(cm, key, len(wasm))
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	m.CompileTime = time.Since(start)
	return m, nil
}

// PruneCache removes compilation cache entries not used for maxAge.
func PruneCache(dir string, maxAge time.Duration) (removed int, err error) {
	if dir == "" {
		return 0, nil
	}
	cutoff := time.Now().Add(-maxAge)
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, werr error) error {
		if werr != nil || d.IsDir() {
			return nil
		}
		info, ierr := d.Info()
		if ierr == nil && info.ModTime().Before(cutoff) {
			if os.Remove(p) == nil {
				removed++
			}
		}
		return nil
	})
	return removed, err
}
