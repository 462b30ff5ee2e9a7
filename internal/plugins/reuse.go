package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"slices"
	"sync"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/wasmhost"
)

// What an update did to one plugin (Outcome.Action).
const (
	OutcomeAdded         = "added"          // new plugin, new pool
	OutcomeUnchanged     = "unchanged"      // same code and configuration: reused as is
	OutcomeConfigUpdated = "config-updated" // same code: live instances got a new root context
	OutcomeCodeUpdated   = "code-updated"   // new code (or pool shape): new pool, the old one drains
	OutcomeKeptPrevious  = "kept-previous"  // the new version failed; the previous one serves
	OutcomeFailed        = "failed"         // failed with nothing to fall back on: fail strategy applies
	OutcomeInactive      = "inactive"       // no configuration applies anywhere
	OutcomeRemoved       = "removed"        // no longer configured; drains with its generation
)

// Outcome reports what an update did to one plugin.
type Outcome struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	SHA256 string `json:"sha256,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Changed reports whether the outcome alters what serves requests.
func (o Outcome) Changed() bool {
	return o.Action != OutcomeUnchanged && o.Action != OutcomeKeptPrevious
}

// pluginRef counts the sets (configuration generations) holding one
// plugin. A plugin reused by the next generation must stay open while the
// previous one still serves requests; it drains and closes when the last
// set holding it is closed.
type pluginRef struct {
	p  *wasmhost.Plugin
	mu sync.Mutex
	n  int
}

func newPluginRef(p *wasmhost.Plugin) *pluginRef { return &pluginRef{p: p, n: 1} }

func (r *pluginRef) acquire() *pluginRef {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return r
}

func (r *pluginRef) release(ctx context.Context) {
	r.mu.Lock()
	r.n--
	last := r.n == 0
	r.mu.Unlock()
	if last {
		r.p.Drain(ctx)
	}
}

// bindingRef counts the sets holding one configuration version of a
// plugin (a wasmhost.Binding), as pluginRef counts them for the plugin. A
// set hands out the streams of its version only: a request of one
// generation runs every plugin with that generation's configuration, even
// when it reaches a plugin after a newer generation reconfigured it. The
// binding is released when the last set holding it is closed; the
// version's root contexts then retire as their streams end.
type bindingRef struct {
	b  *wasmhost.Binding
	mu sync.Mutex
	n  int
}

func newBindingRef(b *wasmhost.Binding) *bindingRef { return &bindingRef{b: b, n: 1} }

func (r *bindingRef) acquire() *bindingRef {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return r
}

func (r *bindingRef) release() {
	r.mu.Lock()
	r.n--
	last := r.n == 0
	r.mu.Unlock()
	if last {
		r.b.Release()
	}
}

// Update builds the plugin set of snap from prev, the set in force (nil at
// start). For each plugin of the same name in prev:
//
//   - same code (module sha256), same pool shape and same configuration:
//     the plugin is reused as is;
//   - same code and shape, new configuration: every live instance gets a
//     new root context (wasmhost.Plugin.UpdateConfig), and the new set
//     hands out streams bound to that configuration version while prev
//     keeps handing out the previous one: a request runs every plugin
//     with its own generation's configuration. The previous version's
//     roots retire once no set holds it and their streams have ended;
//   - new code (or a new root id, fail strategy, environment or pool
//     size): a new pool is built (canary first); the old plugin drains when
//     the last set holding it is closed;
//   - any failure (fetch, compile, configure) keeps the previous version
//     serving, with the error in Status.UpdateError.
//
// Plugins load in parallel, so a slow or failing one does not hold up the
// others. Calls must not overlap (the app serialises reloads). prev is
// left untouched; the caller closes it once the requests using it are
// done. Every plugin the new set holds is reference-counted, so closing
// prev never closes a plugin the new set reuses.
func (m *Manager) Update(ctx context.Context, prev *Set, snap *config.Snapshot) (*Set, []Outcome) {
	// Machine code of modules no open plugin runs any more (replaced by a
	// code update and drained since) is dropped before compiling: updates
	// are serialised, so no module from Compile is waiting for its plugin.
	if n := m.opts.Runtime.Sweep(ctx); n > 0 {
		m.logger.Info("released compiled modules no plugin uses", "modules", n)
	}
	byName := map[string]*entry{}
	if prev != nil {
		for _, e := range prev.entries {
			byName[e.status.Name] = e
		}
	}
	wps := order(snap.WasmPlugins)
	s := &Set{entries: make([]*entry, len(wps))}
	var wg sync.WaitGroup
	for i, wp := range wps {
		wg.Go(func() { s.entries[i] = m.load(ctx, wp, byName[config.PluginName(wp)]) })
	}
	wg.Wait()
	outs := make([]Outcome, 0, len(wps))
	seen := map[string]bool{}
	for _, e := range s.entries {
		seen[e.status.Name] = true
		o := Outcome{Name: e.status.Name, Action: e.outcome, SHA256: e.status.SHA256, Error: e.status.Error}
		if e.status.UpdateError != "" {
			o.Error = e.status.UpdateError
		}
		outs = append(outs, o)
	}
	if prev != nil {
		for _, e := range prev.entries {
			if !seen[e.status.Name] {
				outs = append(outs, Outcome{Name: e.status.Name, Action: OutcomeRemoved, SHA256: e.status.SHA256})
			}
		}
	}
	return s, outs
}

// reuse serves e from prev's plugin when the code and pool shape are the
// same, reconfiguring it if the configuration changed. It reports false
// when a new pool is needed.
func (m *Manager) reuse(ctx context.Context, e, prev *entry, mod *wasmhost.Module, ps wasmhost.PluginSpec, logger *slog.Logger) bool {
	if prev == nil || prev.ref == nil {
		return false
	}
	p := prev.ref.p
	cur := p.Spec()
	if p.Module().SHA256 != mod.SHA256 || !sameShape(cur, ps) {
		return false
	}
	e.outcome = OutcomeUnchanged
	// Compare with the version prev serves, not the plugin's newest one: a
	// set built and then discarded may have added a newer version.
	if !bytes.Equal(prev.binding.b.Config(), ps.Config) {
		b, err := p.UpdateConfig(ctx, ps.Config)
		if err != nil {
			m.keepPrevious(e, prev, err, logger)
			return true
		}
		e.binding = newBindingRef(b)
		e.outcome = OutcomeConfigUpdated
		logger.Info("plugin configuration updated on its live instances", "version", b.Version())
	} else {
		e.binding = prev.binding.acquire()
	}
	e.ref = prev.ref.acquire()
	e.plugin, e.factory = p, e.binding.b
	e.status.State = StateReady
	return true
}

// sameShape reports whether two specs of one module can share a pool:
// everything but the configuration is equal.
func sameShape(a, b wasmhost.PluginSpec) bool {
	a, b = withDefaults(a), withDefaults(b)
	return a.Name == b.Name && a.RootID == b.RootID && a.FailOpen == b.FailOpen &&
		slices.Equal(a.Env, b.Env) && a.PoolSize == b.PoolSize && a.MaxMemoryBytes == b.MaxMemoryBytes
}

// withDefaults fills in what wasmhost.NewPlugin defaults, so that a spec
// compares equal to the spec of the plugin built from it.
func withDefaults(s wasmhost.PluginSpec) wasmhost.PluginSpec {
	if s.PoolSize <= 0 {
		s.PoolSize = min(runtime.GOMAXPROCS(0), 8)
	}
	if s.MaxMemoryBytes == 0 {
		s.MaxMemoryBytes = 512 << 20
	}
	if s.RootID == "" {
		s.RootID = s.Name
	}
	return s
}

// keepPrevious makes e serve exactly as prev did (same plugin, scope,
// chain position inputs) after the new version of the plugin failed.
func (m *Manager) keepPrevious(e, prev *entry, err error, logger *slog.Logger) *entry {
	e.ref = prev.ref.acquire()
	e.binding = prev.binding.acquire()
	e.plugin, e.factory, e.scope = prev.plugin, prev.factory, prev.scope
	e.status = prev.status
	e.status.State, e.status.Error = StateReady, ""
	e.status.UpdateError = err.Error()
	e.status.Serving = "previous version"
	if prev.status.SHA256 != "" {
		e.status.Serving = "previous version (sha256 " + short(prev.status.SHA256) + ")"
	}
	e.outcome = OutcomeKeptPrevious
	logger.Error("plugin update failed; the previous version keeps serving", "serving", e.status.Serving, "error", err)
	return e
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// UpdateFailures lists "name: reason" for plugins whose latest
// configuration could not be applied and whose previous version serves.
func (s *Set) UpdateFailures() []string {
	var out []string
	for _, e := range s.entries {
		if e.status.UpdateError != "" {
			out = append(out, e.status.Name+": update failed, "+e.status.Serving+" serving: "+e.status.UpdateError)
		}
	}
	return out
}
