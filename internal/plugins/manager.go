package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/wasmhost"
)

// Plugin states reported by Status.
const (
	StateReady    = "ready"
	StateFailed   = "failed"
	StateInactive = "inactive" // no configuration applies anywhere
)

// Status is one plugin's state, for /config_dump, /readyz and logs.
type Status struct {
	Name         string `json:"name"`
	URL          string `json:"url"`
	SHA256       string `json:"sha256,omitempty"`
	ABI          string `json:"abi,omitempty"`
	Phase        string `json:"phase"`
	Priority     *int32 `json:"priority,omitempty"`
	FailStrategy string `json:"failStrategy"`
	State        string `json:"state"`
	Error        string `json:"error,omitempty"`
	Instances    int    `json:"instances,omitempty"`
	// UpdateError is why the latest configuration of this plugin could not
	// be applied; Serving then says which version still serves.
	UpdateError string `json:"updateError,omitempty"`
	Serving     string `json:"serving,omitempty"`
}

// Options configure a Manager.
type Options struct {
	Runtime  *wasmhost.Runtime
	Services *wasmhost.Services
	// PoolSize is the instance count per plugin; 0 means min(GOMAXPROCS, 8).
	PoolSize int
	// RecycleMemoryBytes recycles instances past this linear memory; 0
	// means the host default.
	RecycleMemoryBytes uint64
	Logger             *slog.Logger
	// Fetcher gets modules from spec.url; nil uses a shared default
	// (cache in DefaultCacheDir()).
	Fetcher *Fetcher
}

// Manager loads plugin sets. Safe for concurrent use.
type Manager struct {
	opts   Options
	logger *slog.Logger
}

// NewManager returns a manager using opts.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{opts: opts, logger: opts.Logger}
}

// entry is one plugin of a set, in chain order.
type entry struct {
	status  Status
	scope   scope
	factory gateway.FilterFactory // nil when inactive; binding.b when the plugin runs
	plugin  *wasmhost.Plugin
	ref     *pluginRef  // the set's hold on plugin (shared across generations)
	binding *bindingRef // the set's hold on the configuration version it runs
	outcome string      // what the update that built this entry did (Outcome)
}

// Set is the plugins of one configuration generation, ordered for the
// request path. Safe for concurrent use.
type Set struct {
	entries []*entry
	mu      sync.Mutex
	closed  bool
}

// Load builds every plugin of snap. A plugin that fails to load is kept as
// a failed entry that applies its fail strategy; the others run.
func (m *Manager) Load(ctx context.Context, snap *config.Snapshot) *Set {
	s, _ := m.Update(ctx, nil, snap)
	return s
}

// load builds one plugin. prev is the same-named plugin of the generation
// in force (nil at start): it is reused when its code and configuration
// are unchanged, reconfigured when only the configuration changed, and
// kept serving when the new version fails (see reuse.go).
func (m *Manager) load(ctx context.Context, wp *v1alpha1.WasmPlugin, prev *entry) *entry {
	spec := &wp.Spec
	name := config.PluginName(wp)
	e := &entry{
		status: Status{Name: name, URL: spec.URL, SHA256: spec.SHA256, Phase: spec.Phase,
			Priority: spec.Priority, FailStrategy: spec.FailStrategy},
		scope: newScope(spec),
	}
	logger := m.logger.With("plugin", name)
	fail := func(err error) *entry {
		if prev != nil && prev.ref != nil {
			return m.keepPrevious(e, prev, err, logger)
		}
		e.outcome = OutcomeFailed
		e.status.State, e.status.Error = StateFailed, err.Error()
		if spec.FailStrategy != v1alpha1.FailOpen {
			// FAIL_OPEN plugins are simply left out of the chain.
			e.factory = failedFactory{name: name, reason: err.Error()}
		}
		logger.Error("plugin failed to load; requests it applies to follow its fail strategy", "fail_strategy", spec.FailStrategy, "error", err)
		return e
	}
	cfg, deploy, err := buildConfig(spec)
	if err != nil {
		return fail(fmt.Errorf("configuration: %w", err))
	}
	if !deploy {
		e.outcome = OutcomeInactive
		e.status.State = StateInactive
		logger.Info("plugin has no configuration that applies anywhere; not deployed")
		return e
	}
	wasm, err := m.opts.Fetcher.Fetch(ctx, spec.URL, spec.SHA256, spec.ImagePullPolicy, spec.ImagePullSecret)
	if err != nil {
		return fail(err)
	}
	mod, err := m.opts.Runtime.Compile(ctx, wasm)
	if err != nil {
		return fail(err)
	}
	e.status.SHA256, e.status.ABI = mod.SHA256, mod.ABI.String()
	ps := wasmhost.PluginSpec{
		Name:     name,
		RootID:   spec.PluginName,
		Config:   cfg,
		FailOpen: spec.FailStrategy == v1alpha1.FailOpen,
		Env:      vmEnv(spec),
		PoolSize: m.opts.PoolSize,

		MaxMemoryBytes: m.opts.RecycleMemoryBytes,
	}
	if m.reuse(ctx, e, prev, mod, ps, logger) {
		return e
	}
	p, err := wasmhost.NewPlugin(ctx, m.opts.Runtime, mod, ps, m.opts.Services)
	if err != nil {
		return fail(err)
	}
	b := p.Bind()
	e.plugin, e.factory, e.ref, e.binding = p, b, newPluginRef(p), newBindingRef(b)
	e.outcome = OutcomeAdded
	if prev != nil && prev.ref != nil {
		e.outcome = OutcomeCodeUpdated
	}
	e.status.State = StateReady
	e.status.Instances, _ = p.Instances()
	logger.Info("plugin ready", "abi", mod.ABI.String(), "sha256", mod.SHA256[:12], "instances", e.status.Instances, "compile", mod.CompileTime.String())
	return e
}

func vmEnv(spec *v1alpha1.WasmPluginSpec) []string {
	if spec.VMConfig == nil {
		return nil
	}
	var out []string
	for _, ev := range spec.VMConfig.Env {
		v := ev.Value
		if ev.ValueFrom == v1alpha1.EnvHost {
			v = os.Getenv(ev.Name)
		}
		out = append(out, ev.Name+"="+v)
	}
	return out
}

// order sorts plugins by phase (AUTHN, AUTHZ, STATS, unspecified), then
// priority, highest first; an unset priority sorts after every set one;
// ties keep declaration order.
func order(in []*v1alpha1.WasmPlugin) []*v1alpha1.WasmPlugin {
	out := append([]*v1alpha1.WasmPlugin(nil), in...)
	rank := map[string]int{v1alpha1.PhaseAuthn: 0, v1alpha1.PhaseAuthz: 1, v1alpha1.PhaseStats: 2}
	phase := func(p *v1alpha1.WasmPlugin) int {
		if r, ok := rank[p.Spec.Phase]; ok {
			return r
		}
		return 3
	}
	prio := func(p *v1alpha1.WasmPlugin) int64 {
		if p.Spec.Priority == nil {
			return math.MinInt32 - 1
		}
		return int64(*p.Spec.Priority)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := phase(out[i]), phase(out[j]); a != b {
			return a < b
		}
		return prio(out[i]) > prio(out[j])
	})
	return out
}

// Chain is the gateway's ChainProvider: the plugins that apply to st.
func (s *Set) Chain(st *gateway.Stream) []gateway.FilterFactory {
	var out []gateway.FilterFactory
	for _, e := range s.entries {
		if e.factory != nil && e.scope.applies(st) {
			out = append(out, e.factory)
		}
	}
	return out
}

// Empty reports whether no plugin can apply to any request.
func (s *Set) Empty() bool {
	for _, e := range s.entries {
		if e.factory != nil {
			return false
		}
	}
	return true
}

// Statuses reports every plugin in chain order.
func (s *Set) Statuses() []Status {
	out := make([]Status, 0, len(s.entries))
	for _, e := range s.entries {
		st := e.status
		if e.plugin != nil {
			st.Instances, _ = e.plugin.Instances()
		}
		out = append(out, st)
	}
	return out
}

// Failed lists "name: reason" for plugins that failed to load.
func (s *Set) Failed() []string {
	var out []string
	for _, e := range s.entries {
		if e.status.State == StateFailed {
			out = append(out, e.status.Name+": "+e.status.Error)
		}
	}
	return out
}

// Memory reports instance memory per plugin.
func (s *Set) Memory() map[string][]uint64 {
	out := map[string][]uint64{}
	for _, e := range s.entries {
		if e.plugin != nil {
			_, mem := e.plugin.Instances()
			out[e.status.Name] = mem
		}
	}
	return out
}

// Close releases the set's hold on its plugins and on the configuration
// versions it runs: a version no other set uses retires (its root contexts
// end with their last streams), a plugin no other set (generation) uses
// drains its pinned streams, then closes, at the latest when ctx ends.
// Idempotent.
func (s *Set) Close(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	for _, e := range s.entries {
		// The configuration version first: once no set holds it, its root
		// contexts retire as their streams end.
		if e.binding != nil {
			e.binding.release()
		}
		if e.ref != nil {
			e.ref.release(ctx)
		}
	}
}

// failedFactory stands in for a plugin that could not load.
type failedFactory struct {
	name   string
	reason string
}

func (f failedFactory) Name() string { return f.name }

func (f failedFactory) NewFilter(h *gateway.FilterHandle) gateway.Filter {
	return &failedFilter{f: f, h: h}
}

type failedFilter struct {
	f failedFactory
	h *gateway.FilterHandle
}

func (ff *failedFilter) OnRequestHeaders(*gateway.Headers, bool) gateway.HeadersAction {
	body := []byte(`{"error":{"message":"plugin ` + ff.f.name + ` is not available","type":"gateway_error","code":"wasm_fail_stream","status":503}}` + "\n")
	ff.h.SendLocalReply(503, body, []gateway.HeaderField{{Name: "content-type", Value: "application/json"}}, "wasm_fail_stream")
	return gateway.HeadersContinue
}
func (ff *failedFilter) OnRequestBody(*gateway.Buffer, bool) gateway.DataAction {
	return gateway.DataContinue
}
func (ff *failedFilter) OnRequestTrailers(*gateway.Headers) gateway.TrailersAction {
	return gateway.TrailersContinue
}
func (ff *failedFilter) OnResponseHeaders(*gateway.Headers, bool) gateway.HeadersAction {
	return gateway.HeadersContinue
}
func (ff *failedFilter) OnResponseBody(*gateway.Buffer, bool) gateway.DataAction {
	return gateway.DataContinue
}
func (ff *failedFilter) OnResponseTrailers(*gateway.Headers) gateway.TrailersAction {
	return gateway.TrailersContinue
}
func (ff *failedFilter) OnLog()     {}
func (ff *failedFilter) OnDestroy() {}
