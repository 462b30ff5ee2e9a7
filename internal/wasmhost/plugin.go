package wasmhost

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Plugin is a compiled, configured plugin with its instance pool. Safe for
// concurrent use.
//
// Each configuration of a plugin is a version: the one NewPlugin starts
// with, then one per successful UpdateConfig. A Binding is a hold on one
// version and the gateway.FilterFactory of that version: its streams run on
// the version's root context in whatever instance they are pinned to, even
// after newer versions exist. A version retires once no Binding holds it
// and a newer one exists; each of its root contexts then ends
// (proxy_on_done, proxy_on_delete) when its last stream does.
//
// Plugin itself is also a gateway.FilterFactory, for callers that own the
// plugin alone: its streams run on the newest version at the time they
// reach it. Callers that must keep a request on one configuration across
// several plugins (configuration generations) use Bindings.
type Plugin struct {
	spec   PluginSpec
	rt     *Runtime
	module *Module
	// released: the plugin no longer counts as a user of module.
	released sync.Once
	svc      *Services
	logger   *slog.Logger
	env      []string
	pool     *Pool
	metrics  *Metrics
	redis    RedisClient
	// callObs gives the guest call latency observer of an export (nil
	// without metrics).
	callObs func(export string) *callHistogram

	// updateMu serialises UpdateConfig.
	updateMu sync.Mutex
	// vmu guards the version bookkeeping below and version.holds. It is
	// never held while taking an instance's mu.
	vmu     sync.Mutex
	newest  *version // the version new instances configure
	nextVer uint64   // sequence number of the newest version
}

// version is one configuration of a plugin.
type version struct {
	seq    uint64
	config []byte
	holds  int // unreleased Bindings; guarded by Plugin.vmu
	// retired is set once no Binding holds the version and a newer one
	// exists: its roots end as their streams do, and a root started for it
	// later (lazily) is retired as soon as its streams end.
	retired atomic.Bool
}

var (
	_ gateway.FilterFactory = (*Plugin)(nil)
	_ gateway.FilterFactory = (*Binding)(nil)
)

// Binding is a hold on one configuration version of a plugin and the
// gateway.FilterFactory of that version. Safe for concurrent use.
type Binding struct {
	p    *Plugin
	v    *version
	once sync.Once
}

// Name implements gateway.FilterFactory.
func (b *Binding) Name() string { return b.p.spec.Name }

// NewFilter implements gateway.FilterFactory: the stream is pinned to one
// instance of the pool for its whole life and runs on this version's root
// context there. An instance that has no root for the version (one created
// after a newer version, to replace a crashed or recycled instance) starts
// and configures one first; if that fails, the stream gets the plugin's fail
// strategy (FAIL_CLOSE: 503 wasm_fail_stream; FAIL_OPEN: the plugin is
// skipped).
func (b *Binding) NewFilter(h *gateway.FilterHandle) gateway.Filter { return b.p.newFilter(h, b.v) }

// Plugin returns the plugin the binding belongs to.
func (b *Binding) Plugin() *Plugin { return b.p }

// Config returns the version's configuration.
func (b *Binding) Config() []byte { return b.v.config }

// Version is the version's sequence number: 1 for the configuration the
// plugin was created with, then one more per successful UpdateConfig.
func (b *Binding) Version() uint64 { return b.v.seq }

// Release gives the hold back. When no hold is left and a newer version
// exists, the version retires: each of its root contexts ends (proxy_on_done,
// proxy_on_delete) when its last stream does. Streams already created keep
// running; a NewFilter after Release still works, but its root is retired
// when its streams end. Idempotent.
func (b *Binding) Release() {
	b.once.Do(func() {
		p := b.p
		p.vmu.Lock()
		b.v.holds--
		retire := b.v.holds <= 0 && p.newest != b.v
		p.vmu.Unlock()
		if retire {
			p.retireVersion(b.v)
		}
	})
}

// Bind takes a hold on the plugin's newest configuration version. The
// caller releases it (Binding.Release) once it hands out no more streams.
func (p *Plugin) Bind() *Binding {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	p.newest.holds++
	return &Binding{p: p, v: p.newest}
}

func (p *Plugin) newestVersion() *version {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	return p.newest
}

// retireVersion retires v's root context in every instance: at once where
// no stream is attached to it, else when its last stream ends (detach).
func (p *Plugin) retireVersion(v *version) {
	v.retired.Store(true)
	for _, in := range p.pool.all() {
		in.mu.Lock()
		if !in.closed.Load() {
			if id, ok := in.roots[v]; ok {
				if gc := in.contexts[id]; gc != nil && gc.rs != nil {
					gc.rs.retiring = true
					if gc.rs.streams <= 0 {
						in.retireRoot(id)
					}
				}
			}
		}
		in.mu.Unlock()
	}
}

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
		logger: logger.With("plugin", spec.Name), nextVer: 1, newest: &version{seq: 1, config: spec.Config}}
	if p.metrics != nil {
		p.callObs = func(export string) *callHistogram {
			return p.metrics.callHistogram(spec.Name, strings.TrimPrefix(export, "proxy_on_"))
		}
	}
	if svc.NewRedis != nil {
		p.redis = svc.NewRedis()
	}
	rt.acquire(m) // given back when the pool closes (releaseModule)
	p.pool = newPool(p, spec.PoolSize)
	if err := p.pool.fill(ctx); err != nil {
		p.Close(ctx)
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	return p, nil
}

// releaseModule stops counting the plugin as a user of its module, once:
// its pool is closed and no instance will be created from the module.
func (p *Plugin) releaseModule() {
	p.released.Do(func() { p.rt.release(p.module) })
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
// instance of the pool for its whole life and runs on the newest
// configuration version at the time it reaches the plugin. See Binding for
// a factory that stays on one version.
func (p *Plugin) NewFilter(h *gateway.FilterHandle) gateway.Filter {
	return p.newFilter(h, p.newestVersion())
}

func (p *Plugin) newFilter(h *gateway.FilterHandle, v *version) *Filter {
	f := &Filter{p: p, h: h}
	if in := p.pool.acquire(); in != nil {
		f.in = in
		f.root, f.startErr = in.attach(v)
	}
	return f
}

// UpdateConfig adds a configuration version without replacing the
// plugin's instances (spec/host.md §2.4): a canary root context is
// configured first; if the plugin rejects the configuration nothing
// changes and the error says why. Otherwise every live instance gets a
// root context for the new version, which becomes the newest (new
// instances configure only it), and the returned Binding, a hold on it,
// hands out streams that run on it. Older versions keep serving the
// Bindings that hold them; a version no Binding holds any more retires
// (see Binding.Release), the previous newest one at once if nothing holds
// it.
func (p *Plugin) UpdateConfig(ctx context.Context, cfg []byte) (*Binding, error) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	insts := p.pool.live()
	if len(insts) == 0 {
		return nil, fmt.Errorf("plugin %s: no live instance to configure", p.spec.Name)
	}
	p.vmu.Lock()
	v := &version{seq: p.nextVer + 1, config: cfg}
	p.vmu.Unlock()
	var done []*Instance
	for i, in := range insts {
		in.mu.Lock()
		_, err := in.startRoot(v)
		in.mu.Unlock()
		if err != nil {
			// v was never published: no stream can be attached to it.
			for _, d := range done {
				d.mu.Lock()
				if id, ok := d.roots[v]; ok {
					d.retireRoot(id)
				}
				d.mu.Unlock()
			}
			if i == 0 {
				return nil, fmt.Errorf("plugin %s: new configuration rejected: %w", p.spec.Name, err)
			}
			return nil, fmt.Errorf("plugin %s: new configuration failed on instance %d: %w", p.spec.Name, in.id, err)
		}
		done = append(done, in)
	}
	p.vmu.Lock()
	p.nextVer = v.seq
	old := p.newest
	p.newest = v
	v.holds = 1
	retireOld := old.holds <= 0
	p.vmu.Unlock()
	p.pool.setConfig(cfg)
	for _, in := range done {
		in.mu.Lock()
		if id, ok := in.roots[v]; ok {
			in.root = id
		}
		in.mu.Unlock()
	}
	if retireOld {
		p.retireVersion(old)
	}
	return &Binding{p: p, v: v}, nil
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
