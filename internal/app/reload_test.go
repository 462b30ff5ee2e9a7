package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/plugins"
)

func one(p pluginSpec) rigConfig { return rigConfig{plugins: []pluginSpec{p}} }

func outcome(t *testing.T, res app.ReloadResult, name string) plugins.Outcome {
	t.Helper()
	for _, o := range res.Plugins {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no outcome for plugin %s in %+v", name, res)
	return plugins.Outcome{}
}

// TestReloadNoop: a file that says the same thing (a comment added) is a
// no-op: no new generation, counted as noop.
func TestReloadNoop(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	gen := r.app.Generation()
	cfg := r.cfg
	cfg.comment = "only a comment changed"
	res, err := r.reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != app.ReloadNoop || res.Changed || res.Generation != gen || r.app.Generation() != gen {
		t.Errorf("reload of an unchanged configuration: %+v (generation was %d, is %d)", res, gen, r.app.Generation())
	}
	if got := metric(t, r.app.Registry(), "sluice_config_reloads_total", map[string]string{"result": "noop"}); got != 1 {
		t.Errorf("noop reloads: %v, want 1", got)
	}
}

// TestReloadModuleRebuiltInPlace: the configuration hash is unchanged but
// the module behind its file:// URL was rebuilt: that is a code change,
// not a no-op.
func TestReloadModuleRebuiltInPlace(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	// The same code with a custom section appended: valid, another sha256.
	rebuilt := append(append([]byte(nil), probeWasm...), 0x00, 0x04, 0x01, 'x', 'v', '2')
	if err := os.WriteFile(filepath.Join(r.dir, string(probe)), rebuilt, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.app.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, res, "a"); o.Action != plugins.OutcomeCodeUpdated || !res.Changed {
		t.Errorf("reload after the module changed: %+v", res)
	}
	if res, err := r.app.Reload(context.Background()); err != nil || res.Result != app.ReloadNoop {
		t.Errorf("second reload: %+v %v, want noop", res, err)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != "p-1" {
		t.Errorf("after: %q %v", got, err)
	}
}

// TestReloadConfigOnly: a configuration-only change reuses the pool (new
// root context on the live instances); a stream in flight keeps the old
// configuration to its end, new requests see the new one.
func TestReloadConfigOnly(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	if got, err := consistent(r.mustGet("/")); err != nil || got != "p-1" {
		t.Fatalf("before: %q %v", got, err)
	}
	s, err := r.openSSE(3)
	if err != nil {
		t.Fatal(err)
	}
	if tag, err := r.next(s); err != nil || tag != "|p-1" {
		t.Fatalf("first event: %q %v", tag, err)
	}
	res, err := r.reload(one(pluginSpec{name: "a", mod: probe, value: "p-2"}))
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, res, "a"); o.Action != plugins.OutcomeConfigUpdated || !res.Changed || res.Result != app.ReloadSuccess {
		t.Fatalf("result %+v", res)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != "p-2" {
		t.Errorf("after: %q %v", got, err)
	}
	for i := 1; i < 3; i++ {
		if tag, err := r.next(s); err != nil || tag != "|p-1" {
			t.Errorf("event %d of the stream started before the reload: %q %v, want the old configuration", i, tag, err)
		}
	}
	if _, err := s.finish(); err != nil {
		t.Error(err)
	}
	if got := metric(t, r.app.Registry(), "sluice_wasm_instances", map[string]string{"plugin": "a"}); got != 2 {
		t.Errorf("instances after a config-only change: %v, want the pool of 2 reused", got)
	}
	if got := metric(t, r.app.Registry(), "sluice_config_generation", nil); got != float64(res.Generation) || res.Generation != 2 {
		t.Errorf("generation gauge %v, result %d, want 2", got, res.Generation)
	}
}

// TestReloadCodeChange: new code gets a new pool; the old one serves the
// stream in flight to its end, then drains and closes.
func TestReloadCodeChange(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	s, err := r.openSSE(2)
	if err != nil {
		t.Fatal(err)
	}
	if tag, err := r.next(s); err != nil || tag != "|p-1" {
		t.Fatalf("first event: %q %v", tag, err)
	}
	res, err := r.reload(one(pluginSpec{name: "a", mod: hello, value: "h-2"}))
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, res, "a"); o.Action != plugins.OutcomeCodeUpdated {
		t.Fatalf("result %+v", res)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != "h-2" {
		t.Errorf("after: %q %v", got, err)
	}
	// Old and new pools are both live while the stream runs.
	if got := metric(t, r.app.Registry(), "sluice_wasm_instances", map[string]string{"plugin": "a"}); got != 4 {
		t.Errorf("instances while the old generation drains: %v, want 4 (2 old + 2 new)", got)
	}
	if tag, err := r.next(s); err != nil || tag != "|p-1" {
		t.Errorf("second event of the stream started before the reload: %q %v, want the old code", tag, err)
	}
	if _, err := s.finish(); err != nil {
		t.Error(err)
	}
	eventually(t, "the old pool to close", func() bool {
		return metric(t, r.app.Registry(), "sluice_wasm_instances", map[string]string{"plugin": "a"}) == 2
	})
}

// TestReloadBrokenYAML: a configuration that does not parse is rejected
// whole with file:line, counted, and the running one keeps serving.
func TestReloadBrokenYAML(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	gen := r.app.Generation()
	good := r.cfg.render(r)
	for _, tc := range []struct{ name, text, want string }{
		{"yaml", good + "---\nkind: Route\nspec: {match: [unclosed\n", "sluice.yaml:"},
		{"validation", strings.Replace(good, "cluster: up", "cluster: nowhere", 1), "nowhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.writeFile(tc.text)
			res, err := r.app.Reload(context.Background())
			var list config.ErrorList
			if !errors.Is(err, app.ErrRejected) || !errors.As(err, &list) {
				t.Fatalf("err = %v, want ErrRejected wrapping a config.ErrorList", err)
			}
			if res.Result != app.ReloadFailure || res.Generation != gen || len(res.Errors) == 0 || !strings.Contains(strings.Join(res.Errors, "\n"), tc.want) {
				t.Errorf("result %+v, want a failure naming %q", res, tc.want)
			}
			if !strings.Contains(res.Errors[0], r.path+":") {
				t.Errorf("error %q does not name file:line", res.Errors[0])
			}
			if got, err := consistent(r.mustGet("/")); err != nil || got != "p-1" {
				t.Errorf("still serving: %q %v", got, err)
			}
		})
	}
	if got := metric(t, r.app.Registry(), "sluice_config_reloads_total", map[string]string{"result": "failure"}); got != 2 {
		t.Errorf("failed reloads: %v, want 2", got)
	}
	if !strings.Contains(r.logs.String(), "configuration rejected") {
		t.Error("the rejection is not logged")
	}
}

// TestReloadBrokenPluginKeepsOld: a plugin whose new version fails
// (configure rejected, or code that does not compile) keeps its previous
// version serving, is reported in /config_dump, /readyz and a metric, and
// does not hold up another plugin's update in the same reload.
func TestReloadBrokenPluginKeepsOld(t *testing.T) {
	base := func(aMod module, aVal string, aReject bool, bVal string) rigConfig {
		return rigConfig{plugins: []pluginSpec{
			{name: "a", mod: aMod, value: aVal, reject: aReject},
			{name: "b", mod: hello, value: bVal},
		}}
	}
	r := newRig(t, base(probe, "p-1", false, "h-1"))
	for _, tc := range []struct {
		name string
		cfg  rigConfig
	}{
		{"configure rejected", base(probe, "p-2", true, "h-2")},
		{"code does not compile", base(broken, "p-3", false, "h-3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.reload(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if o := outcome(t, res, "a"); o.Action != plugins.OutcomeKeptPrevious || o.Error == "" {
				t.Errorf("plugin a: %+v, want kept-previous with the error", o)
			}
			if o := outcome(t, res, "b"); o.Action != plugins.OutcomeConfigUpdated {
				t.Errorf("plugin b: %+v, want config-updated", o)
			}
			if !res.Changed || len(res.Errors) != 1 {
				t.Errorf("result %+v, want a new generation with one plugin error", res)
			}
			// Request phase: a sets x-cfg, then b replaces it. Response
			// phase (reverse order): b sets it, then a replaces it and
			// tags the body.
			got := r.mustGet("/")
			want := tc.cfg.plugins[1].value
			if got.reqCfg != want || got.respCfg != "p-1" || got.body != "ok|p-1\n" {
				t.Errorf("saw %+v, want b at %s and a still at p-1", got, want)
			}
			st := status(t, r, "a")
			if st.State != plugins.StateReady || st.UpdateError == "" || !strings.Contains(st.Serving, "previous version") {
				t.Errorf("status of a: %+v", st)
			}
			if got := metric(t, r.app.Registry(), "sluice_wasm_plugin_update_failed", map[string]string{"plugin": "a"}); got != 1 {
				t.Errorf("sluice_wasm_plugin_update_failed{plugin=a} = %v, want 1", got)
			}
			if got := metric(t, r.app.Registry(), "sluice_wasm_plugin_ready", map[string]string{"plugin": "a"}); got != 1 {
				t.Errorf("sluice_wasm_plugin_ready{plugin=a} = %v, want 1 (serving)", got)
			}
			ready := admin(t, r, "GET", "/readyz")
			if !strings.Contains(ready, "plugin a: update failed") {
				t.Errorf("/readyz does not report the failed update: %s", ready)
			}
		})
	}
	res, err := r.reload(base(probe, "p-4", false, "h-4"))
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, res, "a"); o.Action != plugins.OutcomeConfigUpdated {
		t.Errorf("after the fix: %+v", o)
	}
	if st := status(t, r, "a"); st.UpdateError != "" {
		t.Errorf("status after the fix: %+v", st)
	}
	if got := metric(t, r.app.Registry(), "sluice_wasm_plugin_update_failed", map[string]string{"plugin": "a"}); got != 0 {
		t.Errorf("sluice_wasm_plugin_update_failed{plugin=a} = %v after the fix, want 0", got)
	}
}

// TestReloadListenerChangeWarns: a listener change is not applied (it
// needs a restart) and says so; the rest of the change applies.
func TestReloadListenerChangeWarns(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	addr := r.app.Gateway().Addr("main")
	cfg := one(pluginSpec{name: "a", mod: probe, value: "p-2"})
	cfg.listener = "127.0.0.1:1"
	res, err := r.reload(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != app.ReloadSuccess || !strings.Contains(strings.Join(res.Warnings, "\n"), "spec.listeners changed (restart to apply)") {
		t.Errorf("result %+v, want success with a restart warning", res)
	}
	if !strings.Contains(r.logs.String(), "needs a restart") {
		t.Error("no restart warning logged")
	}
	if got := r.app.Gateway().Addr("main"); got != addr {
		t.Errorf("listener moved to %s", got)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != "p-2" {
		t.Errorf("the plugin change did not apply: %q %v", got, err)
	}
}

// TestReloadRoutesAndRemoval: routes apply live, and a plugin removed
// from the configuration is drained and closed.
func TestReloadRoutesAndRemoval(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	res, err := r.reload(rigConfig{routePrefix: "/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, res, "a"); o.Action != plugins.OutcomeRemoved {
		t.Errorf("plugin a: %+v", o)
	}
	if s, err := r.get("/"); err != nil || s.status != http.StatusNotFound {
		t.Errorf("GET / after the route moved: %+v %v, want 404", s, err)
	}
	if s := r.mustGet("/v1/x"); s.respCfg != "" || s.body != "ok" {
		t.Errorf("GET /v1/x: %+v, want no plugin", s)
	}
	eventually(t, "the removed plugin to close", func() bool {
		return metric(t, r.app.Registry(), "sluice_wasm_instances", map[string]string{"plugin": "a"}) == 0
	})
}

// TestPostReload: POST /reload on the admin API answers the result.
func TestPostReload(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	r.set(one(pluginSpec{name: "a", mod: probe, value: "p-2"}))
	var res app.ReloadResult
	code, body := adminDo(t, r, "POST", "/reload")
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	if res.Result != "success" || !res.Changed || res.Generation != 2 || outcome(t, res, "a").Action != plugins.OutcomeConfigUpdated {
		t.Errorf("result %s", body)
	}
	code, body = adminDo(t, r, "POST", "/reload")
	if code != 200 || !strings.Contains(body, `"result": "noop"`) || !strings.Contains(body, `"changed": false`) {
		t.Errorf("second POST /reload: %d %s", code, body)
	}
	r.writeFile("kind: [\n")
	code, body = adminDo(t, r, "POST", "/reload")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `"result": "failure"`) || !strings.Contains(body, "sluice.yaml:1") {
		t.Errorf("POST /reload of a broken file: %d %s", code, body)
	}
	if code, _ := adminDo(t, r, "GET", "/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %d, want 405", code)
	}
	dump := admin(t, r, "GET", "/config_dump")
	if !strings.Contains(dump, `"reload"`) || !strings.Contains(dump, `"generation": 2`) {
		t.Errorf("config dump lacks the reload state: %s", dump)
	}
	for _, name := range []string{"sluice_config_reload_duration_seconds", "sluice_config_last_reload_success_timestamp_seconds"} {
		if metric(t, r.app.Registry(), name, nil) == 0 {
			t.Errorf("%s not reported", name)
		}
	}
}

// TestApplySnapshot: Apply takes an already loaded snapshot (the
// Kubernetes path) and a configuration without files cannot Reload.
func TestApplySnapshot(t *testing.T) {
	r := newRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))
	snap, err := config.Parse(r.path, []byte(one(pluginSpec{name: "a", mod: hello, value: "h-2"}).render(r)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.app.Apply(context.Background(), snap)
	if err != nil || outcome(t, res, "a").Action != plugins.OutcomeCodeUpdated {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if got, err := consistent(r.mustGet("/")); err != nil || got != "h-2" {
		t.Errorf("after apply: %q %v", got, err)
	}
	if res, err := r.app.Apply(context.Background(), snap); err != nil || res.Result != app.ReloadNoop {
		t.Errorf("second apply: %+v %v", res, err)
	}
}

func status(t *testing.T, r *rig, name string) plugins.Status {
	t.Helper()
	var dump struct {
		Plugins []plugins.Status `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(admin(t, r, "GET", "/config_dump")), &dump); err != nil {
		t.Fatal(err)
	}
	for _, st := range dump.Plugins {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no plugin %s in /config_dump", name)
	return plugins.Status{}
}

func admin(t *testing.T, r *rig, method, path string) string {
	t.Helper()
	_, body := adminDo(t, r, method, path)
	return body
}

func adminDo(t *testing.T, r *rig, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.app.AdminAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
