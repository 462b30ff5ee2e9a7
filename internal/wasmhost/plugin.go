package wasmhost

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/gateway"
)

// PluginSpec describes one configured plugin.
type PluginSpec struct {
	// Name is plugin_name ("namespace.name" or "name").
	Name string
	// RootID is the root id (plugin_root_id), Higress's pluginName.
	RootID string
	// Config is the JSON handed to proxy_on_configure.
	Config []byte
	// FailOpen skips the plugin when it fails; otherwise the stream gets
	// 503 wasm_fail_stream.
	FailOpen bool
	// Env is the VM environment, "KEY=VALUE".
	Env []string
	// PoolSize is the number of instances; default min(GOMAXPROCS, 8).
	PoolSize int
	// MaxMemoryBytes recycles an instance whose linear memory grows past
	// it; 0 means the default of 512 MiB.
	MaxMemoryBytes uint64
}

// ClusterSource resolves cluster names for callouts.
type ClusterSource interface {
	Lookup(name string) (*cluster.Cluster, error)
}

// RedisClient performs Redis callouts (internal/redisbridge). Each plugin
// gets its own session, so two plugins may bind one cluster differently.
type RedisClient interface {
	Init(cluster, username, password string, timeout time.Duration) error
	Call(ctx context.Context, cluster string, cmd []byte, done func(status int, reply []byte)) error
	Close() error
}

// Services are the process-wide facilities hostcalls use.
type Services struct {
	// Clusters returns the cluster registry in force (it changes on reload).
	Clusters func() ClusterSource
	// NewRedis opens a Redis session for one plugin; nil disables Redis calls.
	NewRedis func() RedisClient
	Shared   *Shared
	Metrics  *Metrics
	// LogLevel is the gateway's current log level for get_log_level.
	LogLevel func() slog.Level
	Logger   *slog.Logger
}

// Plugin is a compiled, configured plugin with its instance pool. It is a
// gateway.FilterFactory. Safe for concurrent use.
type Plugin struct {
	spec    PluginSpec
	rt      *Runtime
	module  *Module
	svc     *Services
	logger  *slog.Logger
	env     []string
	pool    *Pool
	metrics *Metrics
	redis   RedisClient
	callObs prometheus.Observer // guest call latency, nil without metrics
}

var _ gateway.FilterFactory = (*Plugin)(nil)

// NewPlugin runs a canary (instantiate, root context, vm start, configure)
// and then warms the pool. Any failure rejects the plugin with the reason.
func NewPlugin(ctx context.Context, rt *Runtime, m *Module, spec PluginSpec, svc *Services) (*Plugin, error) {
	if spec.PoolSize <= 0 {
		spec.PoolSize = min(runtime.GOMAXPROCS(0), 8)
	}
	if spec.MaxMemoryBytes == 0 {
		spec.MaxMemoryBytes = 512 << 20
	}
	if spec.RootID == "" {
		spec.RootID = spec.Name
	}
	logger := svc.Logger
	if logger == nil {
		logger = slog.Default()
	}
	p := &Plugin{spec: spec, rt: rt, module: m, svc: svc, env: spec.Env, metrics: svc.Metrics,
		logger: logger.With("plugin", spec.Name)}
	if p.metrics != nil {
		p.callObs = p.metrics.callLatency.WithLabelValues(spec.Name)
	}
	if svc.NewRedis != nil {
		p.redis = svc.NewRedis()
	}
	p.pool = newPool(p, spec.PoolSize)
	if err := p.pool.fill(ctx); err != nil {
		p.Close(ctx)
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	return p, nil
}

// Name implements gateway.FilterFactory.
func (p *Plugin) Name() string { return p.spec.Name }

// Spec returns the plugin's spec.
func (p *Plugin) Spec() PluginSpec {
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	return p.spec
}

// Module returns the compiled module.
func (p *Plugin) Module() *Module { return p.module }

// NewFilter implements gateway.FilterFactory: the stream is pinned to one
// instance of the pool for its whole life.
func (p *Plugin) NewFilter(h *gateway.FilterHandle) gateway.Filter {
	f := &Filter{p: p, h: h}
	if in := p.pool.acquire(); in != nil {
		f.in = in
		f.root = in.attach()
	}
	return f
}

// UpdateConfig switches the plugin to a new configuration without
// replacing its instances (spec/host.md §2.4): a canary root context is
// configured first; if the plugin rejects the configuration the old one
// keeps serving and the error says why. Otherwise every live instance gets
// a new root context, new streams attach to it, and each old root is
// retired (proxy_on_done, proxy_on_delete) when its last stream ends.
func (p *Plugin) UpdateConfig(ctx context.Context, cfg []byte) error {
	insts := p.pool.live()
	if len(insts) == 0 {
		return fmt.Errorf("plugin %s: no live instance to configure", p.spec.Name)
	}
	type swap struct {
		in   *Instance
		root uint32
	}
	var done []swap
	for i, in := range insts {
		in.mu.Lock()
		root, err := in.startRoot(cfg)
		if err != nil {
			in.mu.Unlock()
			for _, s := range done {
				s.in.mu.Lock()
				s.in.retireRoot(s.root)
				s.in.mu.Unlock()
			}
			if i == 0 {
				return fmt.Errorf("plugin %s: new configuration rejected: %w", p.spec.Name, err)
			}
			return fmt.Errorf("plugin %s: new configuration failed on instance %d: %w", p.spec.Name, in.id, err)
		}
		in.mu.Unlock()
		done = append(done, swap{in, root})
	}
	for _, s := range done {
		in := s.in
		in.mu.Lock()
		old := in.root
		in.root = s.root
		if gc := in.contexts[old]; gc != nil && gc.rs != nil {
			gc.rs.retiring = true
			if gc.rs.streams <= 0 {
				in.retireRoot(old)
			}
		}
		in.mu.Unlock()
	}
	p.pool.setConfig(cfg)
	return nil
}

// Close tears down every instance and the plugin's Redis session.
func (p *Plugin) Close(ctx context.Context) {
	p.pool.close(ctx)
	if p.redis != nil {
		_ = p.redis.Close()
	}
}

func (p *Plugin) failStrategy() string {
	if p.spec.FailOpen {
		return "FAIL_OPEN"
	}
	return "FAIL_CLOSE"
}

// onInstanceDeath is called (holding in.mu) when an instance traps.
func (p *Plugin) onInstanceDeath(in *Instance, err error) {
	if p.metrics != nil {
		p.metrics.crashes.WithLabelValues(p.spec.Name).Inc()
	}
	p.pool.report() // the dead instance no longer counts as live
	p.pool.replaceLater(in)
}

// Instances reports the pool's live instances and their memory.
func (p *Plugin) Instances() (live int, memory []uint64) { return p.pool.stats() }

// Drain retires the plugin after a code change: no new stream is pinned to
// it, in-flight streams finish on their instances, then the instances close
// (at the latest when ctx ends).
func (p *Plugin) Drain(ctx context.Context) {
	p.pool.drain(ctx)
	if p.redis != nil {
		_ = p.redis.Close()
	}
}
