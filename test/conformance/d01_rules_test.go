package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Checklist D.1: a wasm-go (pkg/wrapper) module with the 0.2.100 marker
// starts (_initialize, root context, vm_start, configure) and picks its
// configuration per request from route_name, :authority and cluster_name,
// exactly as Higress's rule matcher does.

// clusterDoc renders a Cluster document; port 0 leaves the port to the
// endpoint's.
func clusterDoc(name string, u *upstream, port int) string {
	p := ""
	if port != 0 {
		p = fmt.Sprintf("\n  port: %d", port)
	}
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: %s}
spec:
  endpoints: [{address: %q}]%s
`, name, u.Addr(), p)
}

// routeDoc renders a Route document with a path prefix ("" matches all).
func routeDoc(name, prefix, cluster string) string {
	match := ""
	if prefix != "" {
		match = fmt.Sprintf("\n  match: {path: {prefix: %q}}", prefix)
	}
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: %s}
spec:
  cluster: %s%s
`, name, cluster, match)
}

// lastRequest is the newest request u received; it fails when there is none.
func lastRequest(t *testing.T, u *upstream) seen {
	t.Helper()
	reqs := u.Requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return reqs[len(reqs)-1]
}

// pluginStatus returns the /config_dump status of one plugin.
func (g *gw) pluginStatus(name string) map[string]any {
	g.t.Helper()
	resp, err := http.Get(g.Admin + "/config_dump")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var dump struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		g.t.Fatalf("config_dump: %v", err)
	}
	for _, p := range dump.Plugins {
		if p["name"] == name {
			return p
		}
	}
	g.t.Fatalf("config_dump lists no plugin %q: %v", name, dump.Plugins)
	return nil
}

// TestD1WasmGoStartsWithEmptyConfig: the wasm-go plugin goes through the
// whole start sequence with no configuration at all and then acts on every
// request with its defaults (x-hello: hello, request and response).
func TestD1WasmGoStartsWithEmptyConfig(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, clusterAndRoute(u)+`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: hello}
spec:
  url: "{{wasm wasmgo/hello-rules}}"
`)
	st := g.pluginStatus("hello")
	if st["state"] != "ready" || st["abi"] != "0.2.100" {
		t.Fatalf("plugin status = %v, want state ready, abi 0.2.100", st)
	}
	for i := 0; i < 3; i++ { // more than one stream per instance (pool of 2)
		resp, body := g.Do("GET", "/x", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if got := lastRequest(t, u).Header.Get("X-Hello"); got != "hello" {
			t.Fatalf("upstream x-hello = %q, want the default %q", got, "hello")
		}
		if got := resp.Header.Values("X-Hello"); len(got) != 1 || got[0] != "hello" {
			t.Fatalf("response x-hello = %q, want [hello]", got)
		}
	}
}

// TestD1ConfigureFailureIsHonoured: a rule the plugin refuses to parse makes
// proxy_on_configure return false; the host must treat the plugin as failed
// (FAIL_CLOSE: 503 wasm_fail_stream), not run it with a half-built config.
func TestD1ConfigureFailureIsHonoured(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, clusterAndRoute(u)+plugin("hello", "wasmgo/hello-rules", map[string]any{"value": "global"}, `  matchRules:
  - ingress: [main]
    config: {header: ""}
`))
	if st := g.pluginStatus("hello"); st["state"] != "failed" {
		t.Fatalf("plugin status = %v, want failed (configure returned false)", st)
	}
	resp, body := g.Do("GET", "/x", "")
	if resp.StatusCode != 503 || !strings.Contains(body, "wasm_fail_stream") {
		t.Fatalf("got %d %q, want 503 wasm_fail_stream", resp.StatusCode, body)
	}
	if n := len(u.Requests()); n != 0 {
		t.Fatalf("upstream got %d requests, want 0", n)
	}
}

// TestD1RuleSelection: _rules_ select the configuration by route_name
// (_match_route_ from matchRules.ingress), by :authority (exact, "*.x"
// suffix, port stripped) and by cluster_name (fqdn and fqdn:port); the
// first matching rule wins and no match falls back to the global config.
func TestD1RuleSelection(t *testing.T) {
	u := newUpstream(t)
	res := clusterDoc("up", u, 0) + clusterDoc("llm.dns", u, 443) + clusterDoc("other.svc", u, 8080) +
		routeDoc("route-a", "/a", "up") + routeDoc("route-b", "/b", "up") +
		routeDoc("route-svc", "/svc", "llm.dns") + routeDoc("route-other", "/other", "other.svc") +
		plugin("hello", "wasmgo/hello-rules", map[string]any{"value": "global"}, `  matchRules:
  - ingress: [route-a]
    config: {value: route-a}
  - domain: ["*.example.com"]
    config: {value: wildcard}
  - domain: [api.foo.com]
    config: {value: exact-domain}
  - service: ["llm.dns:80"]
    config: {value: wrong-port}
  - service: ["llm.dns:443"]
    config: {value: service-port, header: x-svc}
  - service: [other.svc]
    config: {value: service-fqdn}
`)
	g := startGateway(t, res)
	cases := []struct {
		name, path, host string
		header, want     string
	}{
		{"route", "/a/1", "plain.local", "X-Hello", "route-a"},
		{"route rule listed first beats domain", "/a/2", "a.example.com", "X-Hello", "route-a"},
		{"wildcard domain", "/b/1", "a.example.com", "X-Hello", "wildcard"},
		{"wildcard domain, deeper name and port", "/b/2", "x.y.example.com:8080", "X-Hello", "wildcard"},
		{"wildcard does not match the bare domain", "/b/3", "example.com", "X-Hello", "global"},
		{"exact domain with port stripped", "/b/4", "api.foo.com:8443", "X-Hello", "exact-domain"},
		{"exact domain is not a prefix match", "/b/5", "api.foo.com.evil", "X-Hello", "global"},
		{"service fqdn:port", "/svc/1", "plain.local", "X-Svc", "service-port"},
		{"service fqdn", "/other/1", "plain.local", "X-Hello", "service-fqdn"},
		{"no rule matches: global", "/b/6", "plain.local", "X-Hello", "global"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := g.Do("GET", c.path, "", "host", c.host)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			r := lastRequest(t, u)
			if r.Path != c.path {
				t.Fatalf("upstream saw %s, want %s", r.Path, c.path)
			}
			if got := r.Header.Get(c.header); got != c.want {
				t.Fatalf("upstream %s = %q, want %q (headers %v)", c.header, got, c.want, r.Header)
			}
			if got := resp.Header.Get(c.header); got != c.want {
				t.Fatalf("response %s = %q, want %q", c.header, got, c.want)
			}
			if c.header == "X-Svc" {
				if v, ok := r.Header["X-Hello"]; ok {
					t.Fatalf("the service rule names its own header, yet x-hello = %q reached the upstream", v)
				}
			}
		})
	}
}

// TestD1DefaultConfigDisable: with defaultConfigDisable and a rule for
// route A only, the plugin acts on route A and not at all on route B. (The
// rule names its header: hello-rules' rules inherit from the global config,
// which is never parsed when it is disabled.)
func TestD1DefaultConfigDisable(t *testing.T) {
	u := newUpstream(t)
	res := clusterDoc("up", u, 0) + routeDoc("route-a", "/a", "up") + routeDoc("route-b", "/b", "up") +
		plugin("hello", "wasmgo/hello-rules", map[string]any{"value": "global"}, `  defaultConfigDisable: true
  matchRules:
  - ingress: [route-a]
    config: {header: x-hello, value: only-a}
`)
	g := startGateway(t, res)

	resp, _ := g.Do("GET", "/a", "")
	if got := lastRequest(t, u).Header.Get("X-Hello"); got != "only-a" {
		t.Fatalf("route A: upstream x-hello = %q, want only-a", got)
	}
	if got := resp.Header.Get("X-Hello"); got != "only-a" {
		t.Fatalf("route A: response x-hello = %q, want only-a", got)
	}

	resp, body := g.Do("GET", "/b", "")
	if resp.StatusCode != 200 {
		t.Fatalf("route B: status %d: %s", resp.StatusCode, body)
	}
	r := lastRequest(t, u)
	if r.Path != "/b" {
		t.Fatalf("upstream saw %s, want /b", r.Path)
	}
	if v, ok := r.Header["X-Hello"]; ok {
		t.Fatalf("route B: the plugin ran (upstream x-hello = %q)", v)
	}
	if v, ok := resp.Header["X-Hello"]; ok {
		t.Fatalf("route B: the plugin ran (response x-hello = %q)", v)
	}
}

// TestD1ConfigDisableRule: a configDisable rule turns a globally enabled
// plugin off for its route only.
func TestD1ConfigDisableRule(t *testing.T) {
	u := newUpstream(t)
	res := clusterDoc("up", u, 0) + routeDoc("route-a", "/a", "up") + routeDoc("route-b", "/b", "up") +
		plugin("hello", "wasmgo/hello-rules", map[string]any{"value": "global"}, `  matchRules:
  - ingress: [route-b]
    configDisable: true
`)
	g := startGateway(t, res)

	resp, _ := g.Do("GET", "/a", "")
	if got := lastRequest(t, u).Header.Get("X-Hello"); got != "global" {
		t.Fatalf("route A: upstream x-hello = %q, want global", got)
	}
	if got := resp.Header.Get("X-Hello"); got != "global" {
		t.Fatalf("route A: response x-hello = %q, want global", got)
	}

	resp, _ = g.Do("GET", "/b", "")
	r := lastRequest(t, u)
	if r.Path != "/b" {
		t.Fatalf("upstream saw %s, want /b", r.Path)
	}
	if v, ok := r.Header["X-Hello"]; ok {
		t.Fatalf("route B (configDisable): upstream x-hello = %q, want none", v)
	}
	if v, ok := resp.Header["X-Hello"]; ok {
		t.Fatalf("route B (configDisable): response x-hello = %q, want none", v)
	}
}
