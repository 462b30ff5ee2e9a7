// Package app assembles a running Sluice process from a configuration:
// telemetry, the gateway and the admin listener, with one lifecycle
// (New → Start → Shutdown). It exists so cmd/sluice stays thin and so tests
// can run the whole gateway in-process.
//
// It must not contain request-path logic; that lives in internal/gateway.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/plugins"
	"github.com/sluicegw/sluice/internal/redisbridge"
	"github.com/sluicegw/sluice/internal/telemetry"
	"github.com/sluicegw/sluice/internal/wasmhost"
)

// Options configure an App.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Chain, when set, replaces the Wasm plugin chain (tests of the seam).
	Chain gateway.ChainProvider
	// WasmCacheDir is wazero's compilation cache; "" uses the user cache dir.
	WasmCacheDir string
	// PoolSize is the instance count per plugin; 0 means min(GOMAXPROCS, 8).
	PoolSize int
	// LogLevel reports the gateway's log level to plugins (get_log_level).
	LogLevel func() slog.Level
	// WasmWatchdog overrides spec.wasm.watchdog (tests).
	WasmWatchdog time.Duration
	// ConfigPaths are the files and directories the configuration was
	// loaded from; Reload and Watch read them again. Empty for
	// configurations that do not come from files (Apply only).
	ConfigPaths []string
}

// App is one running gateway process. Its methods are safe for concurrent use.
//
// The configuration in force is a generation (see reload.go): the
// gateway's routes and clusters plus the plugin set built for them.
// Reload and Apply build the next one and swap it in; what lives across
// generations (listeners, admin, telemetry, the Wasm runtime with its
// compiled modules and shared data, the Redis bridge) is built once here.
type App struct {
	opts     Options
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	access   *telemetry.AccessLog
	traceEnd func(context.Context) error
	gw       *gateway.Server
	admin    *admin.Server

	// The Wasm side, built with the first configuration that has plugins.
	runtime  *wasmhost.Runtime
	redis    *redisbridge.Bridge
	manager  *plugins.Manager
	clusters atomic.Pointer[cluster.Registry] // newest registry, for callouts

	cur      atomic.Pointer[generation]
	reloadMu sync.Mutex // serialises Reload and Apply
	reloads  *reloadMetrics
	drains   sync.WaitGroup // retired generations not yet released
	stopping atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// generation is the configuration in force: the gateway's generation and
// the plugin set its chain runs (nil without Wasm plugins).
type generation struct {
	snap *config.Snapshot
	gw   *gateway.Generation
	set  *plugins.Set
}

// New builds every component; nothing listens yet.
func New(ctx context.Context, snap *config.Snapshot, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &App{opts: opts, logger: opts.Logger, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = telemetry.NewMetrics(a.registry)
	a.reloads = newReloadMetrics(a.registry)
	spec := snap.Gateway.Spec
	var err error
	if a.access, err = telemetry.OpenAccessLog(spec.AccessLog.Path); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	tp, end, err := telemetry.NewTracerProvider(ctx, spec.Tracing, opts.Version)
	if err != nil {
		_ = a.access.Close()
		return nil, fmt.Errorf("tracing: %w", err)
	}
	a.traceEnd = end
	gopts := gateway.Options{Logger: opts.Logger, Metrics: a.metrics, AccessLog: a.access, Chain: opts.Chain}
	wasm := opts.Chain == nil && len(snap.WasmPlugins) > 0
	if spec.Tracing.Enabled {
		gopts.Tracer = tp.Tracer("github.com/sluicegw/sluice")
		gopts.Propagator = telemetry.Propagator()
	}
	if a.gw, err = gateway.New(snap, gopts); err != nil {
		_ = a.access.Close()
		_ = end(ctx)
		return nil, err
	}
	g := a.gw.Generation()
	a.clusters.Store(g.Clusters)
	cur := &generation{snap: snap, gw: g}
	// Plugins load after the gateway exists: their configure may already
	// resolve clusters (proxy_redis_init, proxy_http_call), which live in
	// the gateway's generation. The chain is the generation's own set, so
	// requests keep the plugins of the generation they started on.
	if wasm {
		if err := a.startWasm(ctx, snap); err != nil {
			_ = a.access.Close()
			_ = end(ctx)
			return nil, err
		}
		cur.set, _ = a.manager.Update(ctx, nil, snap)
		g.Chain = cur.set.Chain
	}
	a.cur.Store(cur)
	a.reloads.applied(g.ID, time.Now())
	if !spec.Admin.Disabled {
		a.admin = admin.New(admin.Options{
			Address:     spec.Admin.Address,
			BearerToken: spec.Admin.BearerToken,
			Gatherer:    a.registry,
			Ready:       a.ready,
			ConfigDump:  a.configDump,
			Logger:      opts.Logger,
		})
		a.admin.Handle("POST /reload", a.reloadHandler())
	}
	return a, nil
}

func (a *App) configDump() any {
	cur := a.cur.Load()
	dump := map[string]any{
		"generation": cur.gw.ID,
		"hash":       cur.snap.Hash,
		"files":      cur.snap.Files,
		"config":     cur.snap.Redacted(),
		"reload":     a.reloads.last(),
	}
	if cur.set != nil {
		dump["plugins"] = cur.set.Statuses()
	}
	return dump
}

// PluginStatuses reports the plugins of the configuration in force, in
// chain order (nil without plugins).
func (a *App) PluginStatuses() []plugins.Status {
	if set := a.cur.Load().set; set != nil {
		return set.Statuses()
	}
	return nil
}

// ready is the gateway's readiness; plugins that failed to load or to
// update are listed as details without taking the gateway out of service.
func (a *App) ready() (bool, []string) {
	ok, details := a.gw.Ready()
	if set := a.cur.Load().set; set != nil {
		for _, f := range set.Failed() {
			details = append(details, "plugin "+f)
		}
		for _, f := range set.UpdateFailures() {
			details = append(details, "plugin "+f)
		}
	}
	return ok, details
}

// startWasm starts what the Wasm plugins of every generation share: the
// runtime (compiled modules, cache), the Redis bridge, shared data and
// queues, the plugin manager. snap's spec.wasm configures them; later
// changes to it need a restart.
func (a *App) startWasm(ctx context.Context, snap *config.Snapshot) error {
	opts := a.opts
	wc := snap.Gateway.Spec.Wasm
	dir := opts.WasmCacheDir
	if dir == "" {
		dir = wc.CacheDir
	}
	switch dir {
	case "off":
		dir = ""
	case "":
		if base, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(base, "sluice", "wasm")
		}
	}
	if dir != "" {
		if n, err := wasmhost.PruneCache(dir, 30*24*time.Hour); err == nil && n > 0 {
			a.logger.Info("pruned the wasm compilation cache", "dir", dir, "removed", n)
		}
	}
	watchdog := wc.Watchdog.Duration
	if opts.WasmWatchdog > 0 {
		watchdog = opts.WasmWatchdog
	}
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{
		CacheDir:         dir,
		MemoryLimitPages: uint32(wc.MemoryLimitMiB) * 16,
		Watchdog:         watchdog,
		NoLoopGuard:      wc.LoopGuard != nil && !*wc.LoopGuard,
		Logger:           a.logger,
	})
	if err != nil {
		return fmt.Errorf("wasm runtime: %w", err)
	}
	a.runtime = rt
	hm := wasmhost.NewMetrics(a.registry, func() map[string][]uint64 {
		if cur := a.cur.Load(); cur != nil && cur.set != nil {
			return cur.set.Memory()
		}
		return nil
	})
	// Callouts resolve against the newest cluster registry: during a
	// reload, the next generation's plugins configure against the clusters
	// they will serve with.
	clusters := func() wasmhost.ClusterSource { return a.clusters.Load() }
	a.redis = redisbridge.New(lookupFunc(func(name string) (*cluster.Cluster, error) { return clusters().Lookup(name) }),
		redisbridge.Options{Logger: a.logger})
	svc := &wasmhost.Services{
		Clusters: clusters,
		NewRedis: func() wasmhost.RedisClient { return a.redis.Session(nil) },
		Shared:   wasmhost.NewShared(),
		Metrics:  hm,
		LogLevel: opts.LogLevel,
		Logger:   a.logger,
	}
	pool := opts.PoolSize
	if pool == 0 {
		pool = wc.PoolSize
	}
	a.manager = plugins.NewManager(plugins.Options{Runtime: rt, Services: svc, PoolSize: pool,
		RecycleMemoryBytes: uint64(wc.RecycleMemoryMiB) << 20, Logger: a.logger,
		Fetcher: &plugins.Fetcher{Logger: a.logger}})
	a.registry.MustRegister(pluginReadyCollector(func() []plugins.Status {
		if cur := a.cur.Load(); cur != nil && cur.set != nil {
			return cur.set.Statuses()
		}
		return nil
	}))
	return nil
}

// Start opens the admin listener and the gateway listeners.
func (a *App) Start(ctx context.Context) error {
	if a.admin != nil {
		if err := a.admin.Start(); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	if err := a.gw.Start(ctx); err != nil {
		if a.admin != nil {
			_ = a.admin.Shutdown(ctx)
		}
		return err
	}
	snap := a.cur.Load().snap
	a.logger.Info("sluice started", "listeners", a.gw.Addrs(), "admin", a.AdminAddr(), "routes", len(snap.Routes), "clusters", len(snap.Clusters))
	return nil
}

// Gateway is the data plane.
func (a *App) Gateway() *gateway.Server { return a.gw }

// Registry is the Prometheus registry behind /metrics.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// AdminAddr is the admin listener's bound address ("" when disabled).
func (a *App) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Generation is the id of the configuration generation in force (1 at
// start, +1 per applied reload).
func (a *App) Generation() uint64 { return a.cur.Load().gw.ID }

// Snapshot is the configuration in force.
func (a *App) Snapshot() *config.Snapshot { return a.cur.Load().snap }

// Shutdown drains the gateway within ctx, then stops admin and telemetry.
// Safe to call more than once and after a failed Start.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() {
		var errs []error
		a.stopping.Store(true)
		if err := a.gw.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if a.admin != nil {
			if err := a.admin.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		// No reload starts from here on; retired generations finish
		// releasing their plugins (bounded by ctx) before the runtime goes.
		a.reloadMu.Lock()
		defer a.reloadMu.Unlock()
		a.waitDrains(ctx)
		if set := a.cur.Load().set; set != nil {
			set.Close(ctx)
		}
		if a.redis != nil {
			if err := a.redis.Close(); err != nil {
				errs = append(errs, fmt.Errorf("redis: %w", err))
			}
		}
		if a.runtime != nil {
			if err := a.runtime.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("wasm runtime: %w", err))
			}
		}
		if err := a.traceEnd(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing: %w", err))
		}
		if err := a.access.Close(); err != nil {
			errs = append(errs, fmt.Errorf("access log: %w", err))
		}
		a.stopErr = errors.Join(errs...)
	})
	return a.stopErr
}

// lookupFunc adapts a function to redisbridge.ClusterLookup.
type lookupFunc func(string) (*cluster.Cluster, error)

func (f lookupFunc) Lookup(name string) (*cluster.Cluster, error) { return f(name) }
