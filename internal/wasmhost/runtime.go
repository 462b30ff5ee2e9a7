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
	"github.com/tetratelabs/wazero/sys"

	"github.com/sluicegw/sluice/internal/atomicfile"
	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"
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
	// NoLoopGuard compiles modules without the loop guard (see Runtime and
	// docs/RATIONALE.md). Slightly faster loops, but a guest stuck in a
	// loop then freezes the whole process at the next garbage collection.
	// Only for fully trusted plugins; a Watchdog turns the guard back on.
	NoLoopGuard bool
	Logger      *slog.Logger
}

// Runtime is one wazero runtime with the Proxy-Wasm host modules
// instantiated, shared by every plugin. Safe for concurrent use.
//
// The loop guard (on unless NoLoopGuard) is our own: Compile rewrites each
// module so that its loops count down a budget and call
// sluice_loopguard.yield when it runs out (see package loopguard). A module
// the rewrite cannot handle falls back to wazero's guard, in a second
// wazero runtime created on first need (wazero's guard is a runtime-wide
// setting and costs an exit to Go at every loop back-edge plus a goroutine
// per call).
type Runtime struct {
	r      wazero.Runtime // CloseOnContextDone off
	cache  wazero.CompilationCache
	opts   RuntimeOptions
	logger *slog.Logger

	mu       sync.Mutex
	compiled map[string]*Module       // by sha256
	inflight map[string]chan struct{} // compilations running, by sha256
	// wazeroGuard is the fallback runtime with wazero's own loop guard;
	// nil until a module needs it. Guarded by mu.
	wazeroGuard wazero.Runtime
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
	if opts.Watchdog > 0 {
		opts.NoLoopGuard = false // the watchdog acts at the guard's yields
	}
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
	}
	r, err := rt.newWazero(ctx, false)
	if err != nil {
		if rt.cache != nil {
			_ = rt.cache.Close(ctx)
		}
		return nil, err
	}
	rt.r = r
	return rt, nil
}

// newWazero creates a wazero runtime with the host modules: env, WASI,
// wasi_unstable and sluice_loopguard. closeOnDone turns on wazero's own
// loop guard.
func (rt *Runtime) newWazero(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
	cfg := wazero.NewRuntimeConfig().WithMemoryLimitPages(rt.opts.MemoryLimitPages).WithCloseOnContextDone(closeOnDone)
	if rt.cache != nil {
		cfg = cfg.WithCompilationCache(rt.cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	// AssemblyScript's runtime imports the old module name for proc_exit.
	if _, err := r.NewHostModuleBuilder("wasi_unstable").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(procExitUnstable), []api.ValueType{api.ValueTypeI32}, nil).
		Export("proc_exit").Instantiate(ctx); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("wasi_unstable: %w", err)
	}
	if _, err := r.NewHostModuleBuilder(loopguard.ImportModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(loopYield), nil, nil).
		Export(loopguard.ImportName).Instantiate(ctx); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("%s: %w", loopguard.ImportModule, err)
	}
	if err := instantiateEnv(ctx, r); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("env host module: %w", err)
	}
	return r, nil
}

// loopYield is the loop guard's host function, called by an instrumented
// guest every loopguard.Budget loop iterations. Being Go code, it is where
// the Go scheduler and the garbage collector's stop-the-world can preempt
// a goroutine running guest code. It ends the guest call (a trap: the
// instance is replaced) when the call's context is done (watchdog) or the
// module was closed.
func loopYield(ctx context.Context, m api.Module, _ []uint64) {
	if err := ctx.Err(); err != nil {
		panic(fmt.Errorf("loop guard: %w", err))
	}
	if m.IsClosed() {
		panic(errors.New("loop guard: the instance was closed"))
	}
}

func procExitUnstable(ctx context.Context, m api.Module, stack []uint64) {
	code := uint32(stack[0])
	_ = m.CloseWithExitCode(ctx, code)
	// Nothing of the guest may run after proc_exit.
	panic(sys.NewExitError(code))
}

// Close releases the runtime and everything compiled in it.
func (rt *Runtime) Close(ctx context.Context) error {
	err := rt.r.Close(ctx)
	rt.mu.Lock()
	if rt.wazeroGuard != nil {
		err = errors.Join(err, rt.wazeroGuard.Close(ctx))
	}
	rt.mu.Unlock()
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
// once at a time per key. With the loop guard on, the module is
// instrumented first; when that fails it is compiled as it is in the
// runtime with wazero's guard.
func (rt *Runtime) compile(ctx context.Context, key string, wasm []byte) (*Module, error) {
	start := time.Now()
	if err := loopguard.CheckCounts(wasm); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	r, code := rt.r, wasm
	guard := GuardNone
	if !rt.opts.NoLoopGuard {
		inst, err := rt.instrument(key, wasm)
		if err == nil {
			code, guard = inst, GuardInstrumented
		} else {
			rt.logger.Info("loop guard: the module cannot be instrumented; using wazero's slower guard for it", "sha256", key[:12], "reason", err)
			if r, err = rt.fallback(ctx); err != nil {
				return nil, err
			}
			guard = GuardWazero
		}
	}
	cm, err := r.CompileModule(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	m, err := newModule(cm, key, len(wasm))
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	m.r, m.Guard = r, guard
	m.CompileTime = time.Since(start)
	return m, nil
}

// acquire counts one more plugin built on m.
func (rt *Runtime) acquire(m *Module) {
	rt.mu.Lock()
	m.users++
	rt.mu.Unlock()
}

// release counts one plugin built on m less.
func (rt *Runtime) release(m *Module) {
	rt.mu.Lock()
	m.users--
	rt.mu.Unlock()
}

// Sweep drops the compiled modules no open plugin is built on (their
// plugins closed, or none was ever built), so that code updates do not
// keep every earlier version's machine code in memory. A later Compile of
// the same bytes compiles again (from the on-disk cache when there is
// one). It must not run while a caller holds a Module from Compile that it
// has not yet passed to NewPlugin: the plugin manager sweeps before it
// compiles a new configuration. It returns how many modules it dropped.
func (rt *Runtime) Sweep(ctx context.Context) int {
	if rt == nil {
		return 0
	}
	rt.mu.Lock()
	var drop []*Module
	for key, m := range rt.compiled {
		if m.users <= 0 {
			drop = append(drop, m)
			delete(rt.compiled, key)
		}
	}
	rt.mu.Unlock()
	for _, m := range drop {
		_ = m.compiled.Close(ctx)
	}
	return len(drop)
}

// dispatched are the callbacks the host calls through the module's
// dispatcher (loopguard.DispatchExport), case k being dispatched[k]. The
// list is part of the rewrite's output: changing it needs a new
// loopguard.Version, or cached rewrites would disagree with it.
var dispatched = []string{
	"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure",
	"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
	"proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
	"proxy_on_http_call_response", "proxy_on_redis_call_response", "proxy_on_tick",
	"proxy_on_queue_ready", "proxy_on_log", "proxy_on_done", "proxy_on_delete",
	"proxy_on_foreign_function",
}

// instrument returns wasm with the loop guard and the callback dispatcher
// added. With an on-disk cache
// the rewrite is kept there (loopguard/<sha256>-v<version>.wasm, the file's
// first 32 bytes the sha256 of the rest), so that a restart with a warm
// compilation cache does not rewrite every module again (40 ms for a 5 MB
// Go module). A cached file that fails its checksum is rewritten.
func (rt *Runtime) instrument(key string, wasm []byte) ([]byte, error) {
	if rt.opts.CacheDir == "" {
		return loopguard.Instrument(wasm, dispatched...)
	}
	path := filepath.Join(rt.opts.CacheDir, "loopguard", fmt.Sprintf("%s-v%d.wasm", key, loopguard.Version))
	if b, err := os.ReadFile(path); err == nil {
		if len(b) > sha256.Size {
			sum := sha256.Sum256(b[sha256.Size:])
			if string(sum[:]) == string(b[:sha256.Size]) {
				now := time.Now()
				_ = os.Chtimes(path, now, now) // used: PruneCache keeps it
				return b[sha256.Size:], nil
			}
		}
		rt.logger.Warn("loop guard: cached rewrite is corrupt; rewriting the module", "file", path)
	}
	out, err := loopguard.Instrument(wasm, dispatched...)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(out)
	if err := atomicfile.Write(path, sum[:], out); err != nil {
		rt.logger.Warn("loop guard: cannot cache the rewritten module", "file", path, "error", err)
	}
	return out, nil
}

// fallback returns the runtime with wazero's own loop guard, creating it
// on first use.
func (rt *Runtime) fallback(ctx context.Context) (wazero.Runtime, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.wazeroGuard == nil {
		r, err := rt.newWazero(ctx, true)
		if err != nil {
			return nil, err
		}
		rt.wazeroGuard = r
	}
	return rt.wazeroGuard, nil
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
