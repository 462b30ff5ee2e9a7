package conformance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicegw/sluice/internal/redisserver"
)

// Higress's own SDK (wasm-go pkg/wrapper on proxy-wasm-go-sdk) plugins,
// unmodified, through the real gateway.

// TestHigressSDKHelloRules: wasm-go's rule matcher selects the
// configuration by route_name, :authority (wildcard, port stripped) and
// cluster_name (fqdn:port), first match wins, a rule inherits what it does
// not set, and the global configuration applies elsewhere; the request
// header is replaced and the response header added.
func TestHigressSDKHelloRules(t *testing.T) {
	u := newUpstream(t)
	res := clusterAndRoute(u) + fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: llm.dns}
spec:
  port: 443
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: route-a}
spec:
  match: {path: {prefix: /a/}}
  cluster: up
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: svc}
spec:
  match: {path: {prefix: /svc/}}
  cluster: llm.dns
`, u.Addr()) + plugin("hello", "wasmgo/hello-rules", map[string]any{"header": "x-hello", "value": "global"}, `  matchRules:
  - ingress: [route-a]
    config: {value: route-a}
  - domain: ["*.example.com"]
    config: {value: domain}
  - service: ["llm.dns:443"]
    config: {value: service, header: x-svc}
`)
	g := startGateway(t, res)
	for _, tc := range []struct {
		name, path, host string
		header, value    string
	}{
		{"global", "/plain", "", "x-hello", "global"},
		{"route rule", "/a/1", "", "x-hello", "route-a"},
		{"route rule wins over a later domain rule", "/a/2", "api.example.com", "x-hello", "route-a"},
		{"domain wildcard", "/d/1", "api.example.com", "x-hello", "domain"},
		{"domain with port", "/d/2", "API.example.com:8443", "x-hello", "domain"},
		{"domain does not match the bare parent", "/d/3", "example.com", "x-hello", "global"},
		{"service rule with its own header", "/svc/1", "", "x-svc", "service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The client's own value must be replaced, not kept.
			hdr := []string{"x-hello", "from-client"}
			if tc.header != "x-hello" {
				hdr = append(hdr, tc.header, "from-client")
			}
			if tc.host != "" {
				hdr = append(hdr, "host", tc.host)
			}
			resp, body := g.Do("GET", tc.path, "", hdr...)
			r, ok := badLastSeen(u, tc.path)
			if resp.StatusCode != 200 || !ok {
				t.Fatalf("GET %s = %d %q (upstream saw it: %v)", tc.path, resp.StatusCode, body, ok)
			}
			if got := r.Header.Values(tc.header); len(got) != 1 || got[0] != tc.value {
				t.Errorf("upstream %s = %q, want [%s]", tc.header, got, tc.value)
			}
			if got := resp.Header.Values(tc.header); len(got) != 1 || got[0] != tc.value {
				t.Errorf("response %s = %q, want [%s]", tc.header, got, tc.value)
			}
			if tc.header != "x-hello" && r.Header.Get("x-hello") != "from-client" {
				t.Errorf("upstream x-hello = %q: a rule with its own header must leave x-hello alone", r.Header.Get("x-hello"))
			}
		})
	}
}

// sdkRedisServer runs a private redis-server (see redisserver.Start).
func sdkRedisServer(t *testing.T) string { return redisserver.Start(t) }

// TestHigressSDKCallout: wasm-go's cluster client makes an HTTP callout
// (FQDNCluster → outbound|8080||echo.local) while the request waits, the
// callback writes the status and a gjson field into request headers,
// then a RedisClusterClient (StaticIpCluster, initialised at configure
// time, database 1) runs INCR and the reply reaches the response.
func TestHigressSDKCallout(t *testing.T) {
	redisAddr := sdkRedisServer(t)
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	echo := newUpstream(t)
	echo.Handle = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = fmt.Fprintf(w, `{"origin":"10.1.2.3","seen":{"host":%q}}`, r.Host)
	}
	u := newUpstream(t)
	port, _ := strconv.Atoi(redisPort)
	cfg := map[string]any{
		"service": map[string]any{"type": "fqdn", "name": "echo.local", "port": 8080},
		"path":    "/json?from=callout", "timeout_ms": 5000,
		"status_header": "x-callout-status", "field": "origin", "field_header": "x-callout-field",
		"redis": map[string]any{
			"service": map[string]any{"type": "static", "name": "redis", "port": port},
			"key":     "callout-hits", "command": "incr", "database": 1, "timeout_ms": 5000,
			"header": "x-redis-count",
		},
	}
	res := clusterAndRoute(u) + fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: echo.local}
spec:
  port: 8080
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: redis}
spec:
  type: redis
  endpoints: [{address: %q}]
`, echo.Addr(), redisAddr) + plugin("callout", "wasmgo/callout", cfg, "")
	g := startGateway(t, res)

	for i := 1; i <= 3; i++ {
		path := fmt.Sprintf("/call/%d", i)
		resp, body := g.Do("POST", path, "payload")
		r, ok := badLastSeen(u, path)
		if resp.StatusCode != 200 || !ok {
			t.Fatalf("POST %s = %d %q (upstream saw it: %v)", path, resp.StatusCode, body, ok)
		}
		if got := r.Header.Get("x-callout-status"); got != "201" {
			t.Errorf("upstream x-callout-status = %q, want 201", got)
		}
		if got := r.Header.Get("x-callout-field"); got != "10.1.2.3" {
			t.Errorf("upstream x-callout-field = %q, want 10.1.2.3", got)
		}
		if r.Body != "payload" {
			t.Errorf("upstream body = %q, want the held request body", r.Body)
		}
		if got := resp.Header.Values("x-redis-count"); len(got) != 1 || got[0] != strconv.Itoa(i) {
			t.Errorf("response x-redis-count = %q, want [%d]", got, i)
		}
	}
	calls := echo.Requests()
	if len(calls) != 3 {
		t.Fatalf("echo saw %d callouts, want 3", len(calls))
	}
	if c := calls[0]; c.Method != "GET" || c.Path != "/json?from=callout" || c.Host != "echo.local" {
		t.Errorf("callout = %s %s host %q, want GET /json?from=callout host echo.local", c.Method, c.Path, c.Host)
	}
	// The counter lives in database 1, where the plugin's ?db=1 put it.
	for db, want := range map[int]string{0: "", 1: "3"} {
		rc := redis.NewClient(&redis.Options{Addr: redisAddr, DB: db})
		got, err := rc.Get(context.Background(), "callout-hits").Result()
		_ = rc.Close()
		if err == redis.Nil {
			got, err = "", nil
		}
		if err != nil || got != want {
			t.Errorf("redis db %d: GET callout-hits = %q, %v; want %q", db, got, err, want)
		}
	}
	if langLogHas(g.logs.String(), "plugin=callout", "level=WARN") {
		t.Errorf("the plugin logged a warning")
	}
}
