package cluster

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func TestNewRegistryErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := v1alpha1.ClusterSpec{Endpoints: endpoints("127.0.0.1:1")}
	tests := []struct {
		name     string
		clusters []*v1alpha1.Cluster
		want     []string
	}{
		{
			name:     "duplicate name",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", ok), clusterCfg("a", ok)},
			want:     []string{"Cluster/a: metadata.name: defined twice"},
		},
		{
			name:     "nil cluster",
			clusters: []*v1alpha1.Cluster{nil},
			want:     []string{"cluster 0 is nil"},
		},
		{
			name:     "unreadable CA file",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("x:1"), TLS: &v1alpha1.UpstreamTLS{CAFile: filepath.Join(dir, "missing.pem")}})},
			want:     []string{"Cluster/a: spec.tls.caFile:", "missing.pem"},
		},
		{
			name:     "CA file without PEM",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("x:1"), TLS: &v1alpha1.UpstreamTLS{CAFile: notPEM}})},
			want:     []string{"holds no PEM certificate"},
		},
		{
			name:     "bad endpoint",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("ok:1", "x:99999")})},
			want:     []string{`Cluster/a: spec.endpoints[1]: endpoint "x:99999": port "99999"`},
		},
		{
			name:     "negative weight",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: []v1alpha1.Endpoint{{Address: "x:1", Weight: -1}}})},
			want:     []string{"weight -1 is negative"},
		},
		{
			name:     "unknown balancing",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("x:1"), Balancing: "fastest"})},
			want:     []string{`spec.balancing: unknown policy "fastest"`},
		},
		{
			name:     "unknown type",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("x:1"), Type: "eds"})},
			want:     []string{`spec.type: unknown type "eds"`},
		},
		{
			name:     "no endpoints",
			clusters: []*v1alpha1.Cluster{clusterCfg("a", v1alpha1.ClusterSpec{})},
			want:     []string{"spec.endpoints: at least one endpoint is required"},
		},
		{
			name: "every problem at once",
			clusters: []*v1alpha1.Cluster{
				clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("x:0"), Balancing: "fastest"}),
				clusterCfg("b", v1alpha1.ClusterSpec{}),
			},
			want: []string{"Cluster/a: spec.endpoints[0]", "Cluster/a: spec.balancing", "Cluster/b: spec.endpoints"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegistry(tt.clusters, Options{Logger: testLogger(t)})
			if err == nil {
				r.Stop()
				t.Fatal("NewRegistry succeeded, want an error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestEmbeddedRedisNeedsNoEndpoints(t *testing.T) {
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Type: v1alpha1.ClusterRedis, Port: 6379, Redis: &v1alpha1.RedisOptions{Embedded: true}})
	if len(c.Endpoints()) != 0 || !c.Redis().Embedded {
		t.Errorf("endpoints %v, redis %+v", c.Endpoints(), c.Redis())
	}
}

func TestRedisCluster(t *testing.T) {
	opts := &v1alpha1.RedisOptions{Username: "u", Password: "p", DB: 2}
	rec := &healthRecorder{}
	r := newTestRegistry(t, Options{OnHealthChange: rec.record},
		clusterCfg("cache", v1alpha1.ClusterSpec{Type: v1alpha1.ClusterRedis, Port: 6379, Endpoints: endpoints("127.0.0.1:6379"), Redis: opts}))
	startRegistry(t, r)
	c, err := r.Lookup("cache?db=2&buffer_flush_timeout=3&max_buffer_size_before_flush=1024")
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != v1alpha1.ClusterRedis || c.Redis() != c.Spec().Redis || c.Redis().DB != 2 {
		t.Errorf("Type %q, Redis %+v", c.Type(), c.Redis())
	}
	eps := c.Endpoints()
	if len(eps) != 1 || eps[0].Address() != "127.0.0.1:6379" || eps[0].Scheme() != "redis" {
		t.Errorf("endpoints = %v", eps)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://cache/", nil)
	resp, ep, err := c.RoundTrip(req, "")
	if !errors.Is(err, ErrNotHTTP) || resp != nil || ep != nil {
		t.Errorf("RoundTrip = %v, %v, %v; want ErrNotHTTP", resp, ep, err)
	}
	if evs := rec.snapshot(); len(evs) != 0 {
		t.Errorf("redis endpoints reported health: %v", evs)
	}
}

func TestStartReportsInitialHealthOnce(t *testing.T) {
	rec := &healthRecorder{}
	r := newTestRegistry(t, Options{OnHealthChange: rec.record},
		clusterCfg("a", v1alpha1.ClusterSpec{Endpoints: endpoints("127.0.0.1:1", "127.0.0.1:2")}),
		clusterCfg("b", v1alpha1.ClusterSpec{Endpoints: endpoints("127.0.0.1:3")}),
	)
	if evs := rec.snapshot(); len(evs) != 0 {
		t.Fatalf("events before Start: %v", evs)
	}
	startRegistry(t, r)
	startRegistry(t, r) // idempotent
	got := rec.snapshot()
	want := []healthEvent{{"a", "127.0.0.1:1", true}, {"a", "127.0.0.1:2", true}, {"b", "127.0.0.1:3", true}}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestStopIsIdempotentAndSafeWithoutStart(t *testing.T) {
	spec := v1alpha1.ClusterSpec{
		Endpoints:   endpoints("127.0.0.1:1"),
		HealthCheck: &v1alpha1.HealthCheck{Interval: v1alpha1.D(10 * time.Millisecond)},
	}
	t.Run("without Start", func(t *testing.T) {
		rec := &healthRecorder{}
		r, err := NewRegistry([]*v1alpha1.Cluster{clusterCfg("a", spec)}, Options{Logger: testLogger(t), OnHealthChange: rec.record})
		if err != nil {
			t.Fatal(err)
		}
		r.Stop()
		r.Stop()
		r.Start(context.Background()) // no effect after Stop
		r.Stop()
		if evs := rec.snapshot(); len(evs) != 0 {
			t.Errorf("Start after Stop reported %v", evs)
		}
	})
	t.Run("after Start", func(t *testing.T) {
		r, err := NewRegistry([]*v1alpha1.Cluster{clusterCfg("a", spec)}, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		r.Start(context.Background())
		r.Stop()
		r.Stop()
		c, _ := r.Lookup("a")
		c.mu.Lock()
		n := len(c.checkers)
		c.mu.Unlock()
		if n != 0 {
			t.Errorf("%d health checkers left after Stop", n)
		}
	})
	t.Run("after the start context ends", func(t *testing.T) {
		r, err := NewRegistry([]*v1alpha1.Cluster{clusterCfg("a", spec)}, Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r.Start(ctx)
		cancel()
		r.Stop() // returns once the checkers noticed
	})
}

func TestAllKeepsConfigOrder(t *testing.T) {
	spec := v1alpha1.ClusterSpec{Endpoints: endpoints("127.0.0.1:1")}
	r := newTestRegistry(t, Options{}, clusterCfg("zeta", spec), clusterCfg("alpha", spec))
	var names []string
	for _, c := range r.All() {
		names = append(names, c.Name())
	}
	if !slices.Equal(names, []string{"zeta", "alpha"}) {
		t.Errorf("All() names = %v", names)
	}
}
