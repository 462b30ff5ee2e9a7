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
}

// App is one running gateway process. Its methods are safe for concurrent use.
type App struct {
	snap     *config.Snapshot
	logger   *slog.Logger
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	access   *telemetry.AccessLog
	traceEnd func(context.Context) error
	gw       *gateway.Server
	admin    *admin.Server
	runtime  *wasmhost.Runtime
	plugins  *plugins.Set
	redis    *redisbridge.Bridge

	stopOnce sync.Once
	stopErr  error
}

// New builds every component; nothing listens yet.
func New(ctx context.Context, snap *config.Snapshot, opts Options) (*App, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &App{snap: snap, logger: opts.Logger, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = telemetry.NewMetrics(a.registry)
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
	if wasm {
		gopts.Chain = func(st *gateway.Stream) []gateway.FilterFactory { return a.plugins.Chain(st) }
	}
	if spec.Tracing.Enabled {
		gopts.Tracer = tp.Tracer("github.com/sluicegw/sluice")
		gopts.Propagator = telemetry.Propagator()
	}
	if a.gw, err = gateway.New(snap, gopts); err != nil {
		_ = a.access.Close()
		_ = end(ctx)
		return nil, err
	}
	// Plugins load after the gateway exists: their configure may already
	// resolve clusters (proxy_redis_init, proxy_http_call), which live in
	// the gateway's generation.
	if wasm {
		if err := a.loadPlugins(ctx, snap, opts); err != nil {
			_ = a.access.Close()
			_ = end(ctx)
			return nil, err
		}
	}
	if !spec.Admin.Disabled {
		a.admin = admin.New(admin.Options{
			Address:     spec.Admin.Address,
			BearerToken: spec.Admin.BearerToken,
			Gatherer:    a.registry,
			Ready:       a.ready,
			ConfigDump:  a.configDump,
			Logger:      opts.Logger,
		})
	}
	return a, nil
}

func (a *App) configDump() any {
	g := a.gw.Generation()
	dump := map[string]any{
		"generation": g.ID,
		"hash":       g.Snapshot.Hash,
		"files":      g.Snapshot.Files,
		"config":     g.Snapshot.Redacted(),
	}
	if a.plugins != nil {
		dump["plugins"] = a.plugins.Statuses()
	}
	return dump
}

// ready is the gateway's readiness; plugins that failed to load are listed
// as details without taking the gateway out of service.
func (a *App) ready() (bool, []string) {
	ok, details := a.gw.Ready()
	if a.plugins != nil {
		for _, f := range a.plugins.Failed() {
			details = append(details, "plugin "+f)
		}
	}
	return ok, details
}

// loadPlugins starts the Wasm runtime and loads every WasmPlugin.
func (a *App) loadPlugins(ctx context.Context, snap *config.Snapshot, opts Options) error {
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
	var set *plugins.Set
	hm := wasmhost.NewMetrics(a.registry, func() map[string][]uint64 {
		if set == nil {
			return nil
		}
		return set.Memory()
	})
	clusters := func() wasmhost.ClusterSource { return a.gw.Generation().Clusters }
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
	set = plugins.NewManager(plugins.Options{Runtime: rt, Services: svc, PoolSize: pool,
		RecycleMemoryBytes: uint64(wc.RecycleMemoryMiB) << 20, Logger: a.logger}).Load(ctx, snap)
	a.plugins = set
	a.registry.MustRegister(pluginReadyCollector(set.Statuses))
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
	a.logger.Info("sluice started", "listeners", a.gw.Addrs(), "admin", a.AdminAddr(), "routes", len(a.snap.Routes), "clusters", len(a.snap.Clusters))
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

// Shutdown drains the gateway within ctx, then stops admin and telemetry.
// Safe to call more than once and after a failed Start.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() {
		var errs []error
		if err := a.gw.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if a.admin != nil {
			if err := a.admin.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if a.plugins != nil {
			a.plugins.Close(ctx)
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
