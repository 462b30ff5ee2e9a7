package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/plugins"
)

// Results of a reload (ReloadResult.Result and the result label of
// sluice_config_reloads_total).
const (
	ReloadSuccess = "success"
	ReloadNoop    = "noop"
	ReloadFailure = "failure"
)

// ReloadResult reports one reload. It is also the JSON body of
// POST /reload.
type ReloadResult struct {
	// Result is success, noop or failure.
	Result string `json:"result"`
	// Generation is the generation in force afterwards (the new one on
	// success, the unchanged one otherwise).
	Generation uint64 `json:"generation"`
	// Changed is true when a new generation was swapped in.
	Changed bool `json:"changed"`
	// Hash is the normalised hash of the configuration in force afterwards.
	Hash string `json:"hash"`
	// Plugins says what happened to each plugin (changed generations only).
	Plugins []plugins.Outcome `json:"plugins,omitempty"`
	// Warnings are configuration warnings and changes that need a restart.
	Warnings []string `json:"warnings,omitempty"`
	// Errors are why the configuration was rejected, one problem each
	// ("file:line: Kind/name: field: message"), or per-plugin failures.
	Errors []string `json:"errors,omitempty"`
	// Duration is how long the reload took, in seconds.
	Duration float64 `json:"durationSeconds"`
}

// ErrRejected wraps every error of a rejected configuration: the
// generation in force keeps serving.
var ErrRejected = errors.New("configuration rejected; the running configuration keeps serving")

// Reload reads the configuration files again (Options.ConfigPaths) and
// applies them like Apply. A configuration that does not load (YAML or
// validation errors) is rejected whole: the error is an ErrRejected
// wrapping the config.ErrorList, and nothing changes.
func (a *App) Reload(ctx context.Context) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	if len(a.opts.ConfigPaths) == 0 {
		return a.reject(start, errors.New("no configuration paths to reload from (the configuration did not come from files)"))
	}
	snap, err := config.Load(a.opts.ConfigPaths...)
	if err != nil {
		return a.reject(start, err)
	}
	return a.apply(ctx, snap, start)
}

// Apply makes snap, an already loaded and validated configuration, the one
// in force, through the same path as Reload (the Kubernetes watcher calls
// it): a snapshot with the hash in force is a no-op (unless a plugin of
// the generation in force has failed, which a re-apply retries);
// otherwise the whole next generation is built (clusters, routes, plugins
// with canaries) and swapped in atomically. Requests in flight finish on
// the generation they started on; plugins only that generation used then
// drain and close. A plugin whose new version fails keeps its previous
// version serving and is reported in the result without failing the
// reload. Changes that need a restart (listeners, admin, access log,
// tracing, the Wasm runtime) are reported as warnings and not applied.
//
// Reload and Apply are serialised.
func (a *App) Apply(ctx context.Context, snap *config.Snapshot) (ReloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.apply(ctx, snap, time.Now())
}

// apply runs with reloadMu held.
func (a *App) apply(ctx context.Context, snap *config.Snapshot, start time.Time) (ReloadResult, error) {
	if a.stopping.Load() {
		return a.reject(start, errors.New("the gateway is shutting down"))
	}
	cur := a.cur.Load()
	res := ReloadResult{Generation: cur.gw.ID, Hash: cur.snap.Hash}
	for _, w := range snap.Warnings {
		res.Warnings = append(res.Warnings, w.Error())
	}
	// prebuilt is the next plugin set when the no-op check built it.
	var prebuilt *plugins.Set
	var prebuiltOuts []plugins.Outcome
	if snap.Hash == cur.snap.Hash && !pluginsFailed(cur.set) {
		// The hash covers the configuration, not the modules it points
		// to: a module rebuilt in place (same file:// URL) is a change.
		// Local modules are cheap to check (a read and a hash; compiled
		// modules are cached), so check them; remote ones are not
		// fetched again for an unchanged configuration.
		if a.manager != nil && cur.set != nil && hasLocalModules(snap) {
			prebuilt, prebuiltOuts = a.manager.Update(ctx, cur.set, snap)
			if allUnchanged(prebuiltOuts) {
				prebuilt.Close(ctx) // only gives back references cur.set also holds
				prebuilt = nil
			}
		}
		if prebuilt == nil {
			res.Result = ReloadNoop
			res.Duration = time.Since(start).Seconds()
			a.reloads.record(res)
			a.logger.Info("configuration unchanged; nothing to reload", "generation", cur.gw.ID, "hash", short(snap.Hash))
			return res, nil
		}
	}
	for _, w := range restartNeeded(cur.snap, snap) {
		res.Warnings = append(res.Warnings, w)
		a.logger.Warn("configuration change needs a restart to apply; the rest is applied now", "change", w)
	}
	for _, w := range snap.Warnings {
		a.logger.Warn("config", "warning", w.Error())
	}

	g, err := a.gw.NewGeneration(snap, nil)
	if err != nil {
		if prebuilt != nil {
			prebuilt.Close(ctx)
		}
		return a.reject(start, err)
	}
	if a.opts.Chain != nil {
		g.Chain = a.opts.Chain
	}
	// Health checks and DNS refresh run until the generation is retired,
	// not until the caller's context ends.
	g.Clusters.Start(context.WithoutCancel(ctx))
	next := &generation{snap: snap, gw: g}
	if a.opts.Chain == nil && (len(snap.WasmPlugins) > 0 || cur.set != nil) {
		if a.manager == nil {
			if err := a.startWasm(ctx, snap); err != nil {
				g.Clusters.Stop()
				return a.reject(start, err)
			}
		}
		a.clusters.Store(g.Clusters)
		if prebuilt != nil {
			next.set, res.Plugins = prebuilt, prebuiltOuts
		} else {
			next.set, res.Plugins = a.manager.Update(ctx, cur.set, snap)
		}
		if !next.set.Empty() {
			g.Chain = next.set.Chain
		}
		for _, o := range res.Plugins {
			if o.Error != "" {
				res.Errors = append(res.Errors, "plugin "+o.Name+": "+o.Error)
			}
		}
	} else {
		a.clusters.Store(g.Clusters)
	}
	old := a.gw.Swap(g)
	a.cur.Store(next)
	a.retire(&generation{snap: cur.snap, gw: old, set: cur.set}, snap.Gateway.Spec.ShutdownTimeout.Duration)

	res.Result, res.Changed = ReloadSuccess, true
	res.Generation, res.Hash = g.ID, snap.Hash
	res.Duration = time.Since(start).Seconds()
	a.reloads.record(res)
	a.reloads.applied(g.ID, time.Now())
	changed := 0
	for _, o := range res.Plugins {
		if o.Changed() {
			changed++
		}
	}
	a.logger.Info("configuration reloaded", "generation", g.ID, "hash", short(snap.Hash),
		"routes", len(snap.Routes), "clusters", len(snap.Clusters), "plugins_changed", changed,
		"plugin_failures", len(res.Errors), "took", time.Since(start).Round(time.Millisecond).String())
	return res, nil
}

// reject records a configuration that could not be applied and leaves the
// generation in force serving.
func (a *App) reject(start time.Time, err error) (ReloadResult, error) {
	cur := a.cur.Load()
	res := ReloadResult{Result: ReloadFailure, Generation: cur.gw.ID, Hash: cur.snap.Hash}
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			res.Errors = append(res.Errors, e.Error())
		}
	} else {
		res.Errors = []string{err.Error()}
	}
	res.Duration = time.Since(start).Seconds()
	a.reloads.record(res)
	for _, e := range res.Errors {
		a.logger.Error("configuration rejected; the running configuration keeps serving", "generation", cur.gw.ID, "error", e)
	}
	return res, fmt.Errorf("%w: %w", ErrRejected, err)
}

// retire releases a replaced generation once its last request is done, or
// after timeout (the gateway's shutdownTimeout) with requests still in
// flight: its clusters stop and the plugins no later generation reuses
// drain and close.
func (a *App) retire(old *generation, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	a.drains.Add(1)
	go func() {
		defer a.drains.Done()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-old.gw.Drained():
		case <-t.C:
			a.logger.Warn("replaced configuration still has requests in flight after the drain timeout; releasing it",
				"generation", old.gw.ID, "in_flight", old.gw.InFlight(), "timeout", timeout.String())
		}
		old.gw.Clusters.Stop()
		if old.set != nil {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			old.set.Close(ctx)
			cancel()
		}
		a.logger.Debug("replaced configuration released", "generation", old.gw.ID)
	}()
}

// waitDrains waits for retired generations to be released, until ctx ends.
func (a *App) waitDrains(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		a.drains.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// hasLocalModules reports whether a plugin of snap loads its module from
// the local file system (file:// or builtin://).
func hasLocalModules(snap *config.Snapshot) bool {
	for _, wp := range snap.WasmPlugins {
		if u := wp.Spec.URL; strings.HasPrefix(u, "file://") || strings.HasPrefix(u, "builtin://") {
			return true
		}
	}
	return false
}

func allUnchanged(outs []plugins.Outcome) bool {
	for _, o := range outs {
		if o.Action != plugins.OutcomeUnchanged && o.Action != plugins.OutcomeInactive {
			return false
		}
	}
	return true
}

func pluginsFailed(s *plugins.Set) bool {
	return s != nil && (len(s.Failed()) > 0 || len(s.UpdateFailures()) > 0)
}

// restartNeeded lists the changes between two configurations that the
// running process cannot apply: they belong to things built once
// (listeners and their connection settings, the admin listener, the access
// log, tracing, the Wasm runtime).
func restartNeeded(old, next *config.Snapshot) []string {
	o, n := old.Gateway.Spec, next.Gateway.Spec
	var out []string
	diff := func(field string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, "Gateway spec."+field+" changed (restart to apply)")
		}
	}
	diff("listeners", o.Listeners, n.Listeners)
	diff("timeouts.readHeader", o.Timeouts.ReadHeader, n.Timeouts.ReadHeader)
	diff("timeouts.idle", o.Timeouts.Idle, n.Timeouts.Idle)
	diff("limits.maxHeaderBytes", o.Limits.MaxHeaderBytes, n.Limits.MaxHeaderBytes)
	diff("admin", o.Admin, n.Admin)
	diff("accessLog", o.AccessLog, n.AccessLog)
	diff("tracing", o.Tracing, n.Tracing)
	diff("wasm", o.Wasm, n.Wasm)
	return out
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// reloadHandler serves POST /reload: it reloads the configuration files
// and answers with the ReloadResult as JSON — 200 when applied or
// unchanged, 422 when the configuration was rejected, 409 when the
// configuration does not come from files.
func (a *App) reloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A client that hangs up must not abort a reload half way.
		res, err := a.Reload(context.WithoutCancel(r.Context()))
		status := http.StatusOK
		if err != nil {
			status = http.StatusUnprocessableEntity
			if len(a.opts.ConfigPaths) == 0 {
				status = http.StatusConflict
			}
		}
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the result failed"}`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	})
}

// String renders a one-line summary for logs and the CLI.
func (r ReloadResult) String() string {
	s := fmt.Sprintf("%s: generation %d (hash %s)", r.Result, r.Generation, short(r.Hash))
	if len(r.Errors) > 0 {
		s += ": " + strings.Join(r.Errors, "; ")
	}
	return s
}
