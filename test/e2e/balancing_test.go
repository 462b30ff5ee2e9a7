package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestWeightedClusters checks an 80/20 traffic split over 500 requests.
func TestWeightedClusters(t *testing.T) {
	a, b := newEchoUpstream(t, "a"), newEchoUpstream(t, "b")
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("a", []string{a.addr()}),
		clusterDoc("b", []string{b.addr()}),
		routeDoc("split", "weightedClusters: [{cluster: a, weight: 80}, {cluster: b, weight: 20}]"),
	}})
	const n = 500
	counts := map[string]int{}
	for range n {
		resp, body := g.get("", "/w")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		counts[resp.Header.Get("X-Upstream")]++
	}
	if counts["a"]+counts["b"] != n {
		t.Fatalf("answers by upstream %v, want %d from a and b", counts, n)
	}
	// Binomial(500, 0.8): mean 400, σ ≈ 8.9; ±50 is 5.6σ, so a correct
	// split fails this about once in 10^7 runs.
	if d := math.Abs(float64(counts["a"]) - 0.8*n); d > 50 {
		t.Errorf("a got %d of %d requests, want 400±50 (weight 80 of 100); b got %d", counts["a"], n, counts["b"])
	}
	if v, _ := g.metric("sluice_http_requests_total", map[string]string{"route": "split", "cluster": "a"}); int(v) != counts["a"] {
		t.Errorf("sluice_http_requests_total{route=split,cluster=a} = %v, want %d", v, counts["a"])
	}
}

// TestHealthCheckEjection checks that an endpoint failing its health check
// is taken out of balancing, reported by the health gauge, and brought
// back when it recovers.
func TestHealthCheckEjection(t *testing.T) {
	var sick atomic.Bool
	newEndpoint := func(name string, health func() int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				w.WriteHeader(health())
				return
			}
			w.Header().Set("X-Upstream", name)
			fmt.Fprintln(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	good := newEndpoint("good", func() int { return http.StatusOK })
	bad := newEndpoint("bad", func() int {
		if sick.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	dead := newEndpoint("dead", func() int { return http.StatusInternalServerError })
	goodAddr, badAddr, deadAddr := good.Listener.Addr().String(), bad.Listener.Addr().String(), dead.Listener.Addr().String()
	// Probes are frequent to keep the test short, with a timeout long enough
	// that a loaded machine does not eject the good endpoint.
	const hc = "healthCheck: {path: /healthz, interval: 200ms, timeout: 200ms, unhealthyThreshold: 2, healthyThreshold: 1}"
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("pool", []string{goodAddr, badAddr}, hc),
		clusterDoc("dead", []string{deadAddr}, hc),
		routeDoc("dead", "match: {path: {prefix: /dead}}", "cluster: dead"),
		routeDoc("pool", "cluster: pool"),
	}})
	health := func(addr string) float64 {
		v, ok := g.metric("sluice_upstream_endpoint_healthy", map[string]string{"cluster": "pool", "endpoint": addr})
		if !ok {
			return -1
		}
		return v
	}
	spread := func(n int) map[string]int {
		counts := map[string]int{}
		for range n {
			resp, body := g.get("", "/x")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			counts[resp.Header.Get("X-Upstream")]++
		}
		return counts
	}

	if h := health(badAddr); h != 1 {
		t.Fatalf("health gauge of %s is %v before any failure, want 1", badAddr, h)
	}
	if c := spread(20); c["good"] == 0 || c["bad"] == 0 {
		t.Fatalf("with both endpoints healthy, traffic went %v; want some to each", c)
	}

	sick.Store(true)
	eventually(t, "the failing endpoint's health gauge to drop to 0", func() bool { return health(badAddr) == 0 })
	if c := spread(50); c["bad"] != 0 || c["good"] != 50 {
		t.Errorf("after ejection traffic went %v; want all 50 to good", c)
	}
	if h := health(goodAddr); h != 1 {
		t.Errorf("health gauge of the good endpoint is %v, want 1", h)
	}

	// With every endpoint ejected the gateway answers 503 itself.
	eventually(t, "the dead endpoint's health gauge to drop to 0", func() bool {
		v, _ := g.metric("sluice_upstream_endpoint_healthy", map[string]string{"cluster": "dead", "endpoint": deadAddr})
		return v == 0
	})
	resp, body := g.get("", "/dead", "X-Request-Id", "no-healthy")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("all endpoints ejected: status %d, want 503; body %s", resp.StatusCode, body)
	} else if e := decodeGatewayError(t, resp, body); e.Error.Code != "no_healthy_upstream" {
		t.Errorf("all endpoints ejected: error code %q, want no_healthy_upstream", e.Error.Code)
	}

	sick.Store(false)
	eventually(t, "the recovered endpoint's health gauge to return to 1", func() bool { return health(badAddr) == 1 })
	if c := spread(20); c["bad"] == 0 {
		t.Errorf("after recovery traffic went %v; want some to the recovered endpoint", c)
	}
}
