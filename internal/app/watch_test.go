package app_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watchRig is a rig whose configuration is watched with a debounce long
// enough that back-to-back writes always fall within it.
func watchRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	r := newRig(t, cfg)
	w, err := r.app.Watch(300 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return r
}

func (r *rig) reloads(result string) float64 {
	return metric(r.t, r.app.Registry(), "sluice_config_reloads_total", map[string]string{"result": result})
}

// waitServing waits until requests see value.
func (r *rig) waitServing(value string) {
	r.t.Helper()
	eventually(r.t, "requests to see "+value, func() bool {
		s, err := r.get("/")
		return err == nil && s.respCfg == value
	})
}

// TestWatchFile: edits of a watched file reload it: in place, replaced by
// a rename (how editors and config management save), and a burst of
// writes within the debounce reloads once.
func TestWatchFile(t *testing.T) {
	r := watchRig(t, one(pluginSpec{name: "a", mod: probe, value: "p-1"}))

	t.Run("edited in place", func(t *testing.T) {
		r.set(one(pluginSpec{name: "a", mod: probe, value: "p-2"}))
		r.waitServing("p-2")
	})

	t.Run("replaced by rename", func(t *testing.T) {
		before := r.reloads("success")
		cfg := one(pluginSpec{name: "a", mod: probe, value: "p-3"})
		tmp := filepath.Join(r.dir, ".sluice.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(cfg.render(r)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, r.path); err != nil {
			t.Fatal(err)
		}
		r.waitServing("p-3")
		// The watch survives the replacement: edit the new file.
		r.set(one(pluginSpec{name: "a", mod: probe, value: "p-4"}))
		r.waitServing("p-4")
		if got := r.reloads("success") - before; got != 2 {
			t.Errorf("%v successful reloads, want 2", got)
		}
	})

	t.Run("burst within the debounce", func(t *testing.T) {
		before, gen := r.reloads("success"), r.app.Generation()
		for i := 5; i <= 9; i++ {
			r.set(one(pluginSpec{name: "a", mod: probe, value: "p-" + string(rune('0'+i))}))
		}
		r.waitServing("p-9")
		if got := r.reloads("success") - before; got != 1 || r.app.Generation() != gen+1 {
			t.Errorf("%v reloads (generation %d → %d) for one burst of writes, want 1", got, gen, r.app.Generation())
		}
	})

	t.Run("partial write then completed", func(t *testing.T) {
		full := one(pluginSpec{name: "a", mod: hello, value: "h-10"}).render(r)
		failures := r.reloads("failure")
		// Cut inside the last document's flow mapping: invalid YAML.
		r.writeFile(full[:len(full)-20])
		eventually(t, "the partial file to be rejected", func() bool { return r.reloads("failure") == failures+1 })
		if s := r.mustGet("/"); s.respCfg != "p-9" {
			t.Errorf("after the partial write: %+v, want the running configuration", s)
		}
		r.writeFile(full)
		r.waitServing("h-10")
	})
}

// TestWatchDirectory: a new file in a watched configuration directory is
// picked up.
func TestWatchDirectory(t *testing.T) {
	cfg := one(pluginSpec{name: "a", mod: probe, value: "p-1"})
	cfg.dir = true
	r := watchRig(t, cfg)
	if s, err := r.get("/v2/x"); err != nil || s.respCfg != "p-1" {
		t.Fatalf("before: %+v %v", s, err)
	}
	extra := "apiVersion: extensions.higress.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: b}\nspec:\n  url: \"file://" + filepath.Join(r.dir, string(hello)) + "\"\n  defaultConfig: {header: x-extra, value: h-1}\n"
	if err := os.WriteFile(filepath.Join(r.dir, "extra.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new file's plugin to run", func() bool {
		resp, err := r.http.Get(r.url("/"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("X-Extra") == "h-1"
	})
}
