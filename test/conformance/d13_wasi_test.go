package conformance

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
)

// D.13: the WASI environment of an instance — real clocks, real randomness
// that differs per instance, stdout/stderr into the gateway log, the
// vmConfig environment (GOMEMLIMIT honoured by the Go runtime, HOST values
// copied from the gateway process), no filesystem.

func TestD13WASIEnvironment(t *testing.T) {
	t.Setenv("SLUICE_D13_HOST_VAR", "from-the-gateway-env")
	u := newUpstream(t)
	cfg := map[string]any{"name": "wasi", "on": map[string]any{
		"configure": []any{
			map[string]any{"op": "random", "bytes": 16, "to": "log:seed"},
			map[string]any{"op": "time_now", "to": "log:configured_at"},
		},
		"response_headers": []any{
			map[string]any{"op": "time_now", "to": "header:x-now"},
			map[string]any{"op": "random", "bytes": 16, "to": "header:x-random"},
			map[string]any{"op": "getenv", "name": "GOMEMLIMIT", "to": "header:x-gomemlimit", "status": "header:x-gomemlimit-status"},
			map[string]any{"op": "getenv", "name": "SLUICE_D13_HOST_VAR", "to": "header:x-host-var", "status": "header:x-host-var-status"},
			map[string]any{"op": "getenv", "name": "SLUICE_D13_INLINE", "to": "header:x-inline"},
			map[string]any{"op": "getenv", "name": "HOME", "status": "header:x-home-status"},
			map[string]any{"op": "read_file", "to": "header:x-read-file", "status": "header:x-read-file-status"},
			map[string]any{"op": "read_file", "file": "go.mod", "to": "header:x-read-rel", "status": "header:x-read-rel-status"},
			map[string]any{"op": "stdout", "message": "d13 hello stdout"},
			map[string]any{"op": "stderr", "message": "d13 hello stderr"},
		},
	}}
	env := `  vmConfig:
    env:
    - {name: GOMEMLIMIT, value: 48MiB}
    - {name: SLUICE_D13_INLINE, valueFrom: INLINE, value: inline-value}
    - {name: SLUICE_D13_HOST_VAR, valueFrom: HOST}
`
	before := time.Now()
	g := startGateway(t, clusterAndRoute(u)+plugin("wasi", "go/probe", cfg, env))
	after := time.Now()

	t.Run("clock and random at configure", func(t *testing.T) {
		seeds := map[string]string{}
		for _, l := range dxLogRecords(g) {
			if l["plugin"] != "wasi" {
				continue
			}
			if v, ok := strings.CutPrefix(l["msg"], "probe[wasi]: seed="); ok {
				seeds[l["instance"]] = v
			}
			if v, ok := strings.CutPrefix(l["msg"], "probe[wasi]: configured_at="); ok {
				ns, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("configured_at %q: %v", v, err)
				}
				at := time.Unix(0, ns)
				if at.Before(before.Add(-2*time.Second)) || at.After(after.Add(2*time.Second)) {
					t.Errorf("instance %s: guest time.Now() at configure = %s, want between %s and %s (a real clock)", l["instance"], at, before, after)
				}
			}
		}
		if len(seeds) != 2 {
			t.Fatalf("random seeds logged by %d instances, want 2: %v", len(seeds), seeds)
		}
		if seeds["1"] == seeds["2"] || len(seeds["1"]) != 32 {
			t.Errorf("instances drew %q and %q: want 16 different random bytes each", seeds["1"], seeds["2"])
		}
	})

	t.Run("per request", func(t *testing.T) {
		sent := time.Now()
		resp, _ := g.Do("GET", "/d13", "")
		got := time.Now()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		h := resp.Header
		ns, err := strconv.ParseInt(h.Get("X-Now"), 10, 64)
		if err != nil {
			t.Fatalf("x-now %q: %v", h.Get("X-Now"), err)
		}
		if now := time.Unix(0, ns); now.Before(sent.Add(-2*time.Second)) || now.After(got.Add(2*time.Second)) {
			t.Errorf("guest time.Now() = %s, want about %s (a real clock)", now, sent)
		}
		if r := h.Get("X-Random"); len(r) != 32 || r == strings.Repeat("0", 32) {
			t.Errorf("x-random = %q, want 16 random bytes in hex", r)
		}
		for _, c := range []struct{ header, want string }{
			{"X-Gomemlimit", "48MiB"},
			{"X-Gomemlimit-Status", "0"},
			{"X-Inline", "inline-value"},
			{"X-Host-Var", "from-the-gateway-env"},
			{"X-Host-Var-Status", "0"},
			// Only vmConfig.env reaches the guest, not the gateway's own environment.
			{"X-Home-Status", "1"},
			// No filesystem: reads fail (status 1 = the probe's NOT_FOUND).
			{"X-Read-File-Status", "1"},
			{"X-Read-Rel-Status", "1"},
		} {
			if got := h.Get(c.header); got != c.want {
				t.Errorf("%s = %q, want %q", c.header, got, c.want)
			}
		}
		for _, hdr := range []string{"X-Read-File", "X-Read-Rel"} {
			if v := h.Get(hdr); !strings.HasPrefix(v, "open ") || strings.HasPrefix(v, "ok:") {
				t.Errorf("%s = %q, want os.ReadFile's error", hdr, v)
			}
		}
		t.Logf("guest file read errors: %q, %q", h.Get("X-Read-File"), h.Get("X-Read-Rel"))
	})

	t.Run("stdout and stderr reach the log", func(t *testing.T) {
		want := map[string]string{"d13 hello stdout": "INFO", "d13 hello stderr": "ERROR"}
		eventually(t, 5*time.Second, "guest stdout and stderr lines in the gateway log", func() bool {
			found := 0
			for _, l := range dxLogRecords(g) {
				if lvl, ok := want[l["msg"]]; ok && l["plugin"] == "wasi" && l["instance"] != "" && l["level"] == lvl {
					found++
				}
			}
			return found >= 2
		})
	})
}

// GOMEMLIMIT from vmConfig.env reaches the Go runtime inside the guest: with
// GOGC=off, garbage is only collected because of the memory limit, so the
// instance's linear memory stays near the limit instead of growing with
// every allocation.
func TestD13GOMEMLIMITBoundsGuestMemory(t *testing.T) {
	u := newUpstream(t)
	const garbageMiB = 64
	churn := func(name string) map[string]any {
		return map[string]any{"name": name, "on": map[string]any{
			"response_headers": []any{
				// 1 MiB of fresh garbage per iteration.
				map[string]any{"op": "repeat", "count": garbageMiB, "steps": []any{
					map[string]any{"op": "random", "bytes": 1 << 20, "encoding": "len", "to": "var:scratch"}}},
				map[string]any{"op": "get_property", "path": "plugin_vm_memory", "encoding": "u64le", "to": "header:x-mem-" + name},
				map[string]any{"op": "getenv", "name": "GOMEMLIMIT", "to": "header:x-limit-" + name},
			},
		}}
	}
	g := startGateway(t, clusterAndRoute(u)+
		plugin("unlimited", "go/probe", churn("unlimited"), "  vmConfig: {env: [{name: GOGC, value: \"off\"}]}\n")+
		plugin("limited", "go/probe", churn("limited"), "  vmConfig: {env: [{name: GOGC, value: \"off\"}, {name: GOMEMLIMIT, value: 24MiB}]}\n"),
		func(o *app.Options) { o.PoolSize = 1 })
	resp, _ := g.Do("GET", "/d13/gc", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mem := func(name string) uint64 {
		v, err := strconv.ParseUint(resp.Header.Get("X-Mem-"+name), 10, 64)
		if err != nil {
			t.Fatalf("x-mem-%s = %q: %v", name, resp.Header.Get("X-Mem-"+name), err)
		}
		return v
	}
	unlimited, limited := mem("unlimited"), mem("limited")
	t.Logf("linear memory after ~%d MiB of garbage: GOGC=off %d MiB, GOGC=off GOMEMLIMIT=24MiB %d MiB", garbageMiB, unlimited>>20, limited>>20)
	if lim := resp.Header.Get("X-Limit-Limited"); lim != "24MiB" {
		t.Errorf("GOMEMLIMIT in the guest = %q, want 24MiB", lim)
	}
	if unlimited < garbageMiB<<20*3/4 {
		t.Fatalf("without a limit the guest grew to only %d MiB; the garbage did not accumulate, so the test proves nothing", unlimited>>20)
	}
	if limited > 48<<20 || limited > unlimited/2 {
		t.Errorf("with GOMEMLIMIT=24MiB the guest grew to %d MiB (unlimited: %d MiB): the limit was not honoured", limited>>20, unlimited>>20)
	}
}
