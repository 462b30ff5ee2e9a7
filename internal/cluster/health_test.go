package cluster

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// flakyServer answers /healthz with its current status and records the
// Host header of probes; other paths answer "<id>:".
type flakyServer struct {
	*httptest.Server
	status atomic.Int32
	probes atomic.Int32
	mu     sync.Mutex
	hosts  map[string]bool
}

func newFlakyServer(t *testing.T, id string) *flakyServer {
	t.Helper()
	s := &flakyServer{hosts: map[string]bool{}}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.Write([]byte(id + ":"))
			return
		}
		s.mu.Lock()
		s.hosts[r.Host] = true
		s.mu.Unlock()
		s.probes.Add(1)
		if s.status.Load() == 0 { // hang until the prober gives up
			<-r.Context().Done()
			return
		}
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func fastHealthCheck() *v1alpha1.HealthCheck {
	return &v1alpha1.HealthCheck{
		Path:               "/healthz",
		Interval:           v1alpha1.D(20 * time.Millisecond),
		Timeout:            v1alpha1.D(time.Second),
		UnhealthyThreshold: 2,
		HealthyThreshold:   1,
	}
}

func TestHealthCheckEjectsAndRecovers(t *testing.T) {
	a, b := newFlakyServer(t, "a"), newFlakyServer(t, "b")
	rec := &healthRecorder{}
	r := newTestRegistry(t, Options{OnHealthChange: rec.record}, clusterCfg("up", v1alpha1.ClusterSpec{
		Endpoints:   endpoints(addrOf(a.Server), addrOf(b.Server)),
		HealthCheck: fastHealthCheck(),
	}))
	startRegistry(t, r)
	c, _ := r.Lookup("up")
	ea := c.Endpoints()[0]
	if evs := rec.snapshot(); len(evs) < 2 || evs[0] != (healthEvent{"up", ea.Address(), true}) {
		t.Fatalf("initial events = %v", evs)
	}

	mark := len(rec.snapshot())
	a.status.Store(http.StatusServiceUnavailable)
	eventually(t, "a to be ejected", func() bool { return rec.has(healthEvent{"up", ea.Address(), false}, mark) })
	if ea.Healthy() {
		t.Fatal("Healthy() still true after the ejection event")
	}
	for range 6 {
		if body, _ := mustSend(t, c, ""); body != "b:" {
			t.Fatalf("request went to %q while a was ejected", body)
		}
	}

	mark = len(rec.snapshot())
	a.status.Store(http.StatusOK)
	eventually(t, "a to recover", func() bool { return rec.has(healthEvent{"up", ea.Address(), true}, mark) })
	seen := map[string]bool{}
	for range 4 {
		body, _ := mustSend(t, c, "")
		seen[body] = true
	}
	if !seen["a:"] || !seen["b:"] {
		t.Errorf("after recovery requests reached %v, want both", seen)
	}
	for _, ev := range rec.snapshot() {
		if ev.endpoint != ea.Address() && !ev.healthy {
			t.Errorf("healthy endpoint b reported %v", ev)
		}
	}
}

func TestHealthCheckFailures(t *testing.T) {
	tests := []struct {
		name     string
		status   int32 // 0: the probe hangs past its timeout
		expected []int
		timeout  time.Duration
		dead     bool
		healthy  bool
	}{
		{name: "5xx", status: 500, healthy: false},
		{name: "4xx outside default 200-399", status: 404, healthy: false},
		{name: "redirect inside default range", status: 302, healthy: true},
		{name: "status outside expected list", status: 200, expected: []int{204}, healthy: false},
		{name: "status in expected list", status: 204, expected: []int{204}, healthy: true},
		{name: "timeout", status: 0, timeout: 30 * time.Millisecond, healthy: false},
		{name: "connection refused", dead: true, healthy: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFlakyServer(t, "a")
			srv.status.Store(tt.status)
			addr := addrOf(srv.Server)
			if tt.dead {
				addr = deadAddr(t)
			}
			hc := fastHealthCheck()
			hc.ExpectedStatuses = tt.expected
			if tt.timeout > 0 {
				hc.Timeout = v1alpha1.D(tt.timeout)
			}
			rec := &healthRecorder{}
			r := newTestRegistry(t, Options{OnHealthChange: rec.record}, clusterCfg("up", v1alpha1.ClusterSpec{
				Endpoints: endpoints(addr), HealthCheck: hc,
			}))
			startRegistry(t, r)
			ep := r.clusters[0].Endpoints()[0]
			if !tt.healthy {
				eventually(t, "ejection", func() bool { return rec.has(healthEvent{"up", addr, false}, 0) })
				return
			}
			// Healthy: after several probes there is still no ejection.
			eventually(t, "4 probes", func() bool { return srv.probes.Load() >= 4 })
			if !ep.Healthy() || rec.has(healthEvent{"up", addr, false}, 0) {
				t.Errorf("endpoint ejected: %v", rec.snapshot())
			}
		})
	}
}

func TestHealthCheckHostHeader(t *testing.T) {
	srv := newFlakyServer(t, "a")
	_, port := splitAddr(t, addrOf(srv.Server))
	r := newTestRegistry(t, Options{}, clusterCfg("up", v1alpha1.ClusterSpec{
		Type:        v1alpha1.ClusterDNS,
		Endpoints:   endpoints("localhost:" + port),
		HealthCheck: fastHealthCheck(),
	}))
	startRegistry(t, r)
	eventually(t, "a probe", func() bool { return srv.probes.Load() >= 1 })
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if want := "localhost:" + port; len(srv.hosts) != 1 || !srv.hosts[want] {
		t.Errorf("probe Host headers %v, want only %q", srv.hosts, want)
	}
}

func TestHealthPolicyDefaults(t *testing.T) {
	p := newHealthPolicy(&v1alpha1.HealthCheck{Path: "ready"})
	if p.path != "/ready" || p.interval != defaultHealthInterval || p.timeout != defaultHealthTimeout || p.unhealthy != 1 || p.healthy != 1 {
		t.Errorf("policy %+v", p)
	}
	for code, want := range map[int]bool{199: false, 200: true, 399: true, 400: false} {
		if p.statusOK(code) != want {
			t.Errorf("statusOK(%d) = %v", code, !want)
		}
	}
}
