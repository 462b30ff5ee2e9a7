package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func lookupRegistry(t *testing.T) *Registry {
	t.Helper()
	named := func(ns, name string, port int, typ string) *v1alpha1.Cluster {
		c := clusterCfg(name, v1alpha1.ClusterSpec{Type: typ, Port: port, Endpoints: endpoints("127.0.0.1:1")})
		c.Metadata.Namespace = ns
		return c
	}
	return newTestRegistry(t, Options{},
		named("", "llm", 80, v1alpha1.ClusterStatic),
		named("", "llm.dns", 443, v1alpha1.ClusterStatic),
		named("", "api.openai.com", 443, v1alpha1.ClusterStatic),
		named("ai", "embed", 8000, v1alpha1.ClusterStatic),
		named("", "web", 8080, v1alpha1.ClusterStatic),
		named("a", "dup", 80, v1alpha1.ClusterStatic),
		named("b", "dup", 80, v1alpha1.ClusterStatic),
		named("", "twin", 80, v1alpha1.ClusterStatic),
		named("default", "twin", 80, v1alpha1.ClusterStatic),
		named("", "kv", 8500, v1alpha1.ClusterStatic),
		named("", "search", 8848, v1alpha1.ClusterStatic),
		named("", "cache", 6379, v1alpha1.ClusterRedis),
	)
}

func TestLookup(t *testing.T) {
	r := lookupRegistry(t)
	tests := []struct {
		name    string
		ref     string
		want    string // "namespace/name" or name of the expected cluster
		wantErr []string
	}{
		{name: "plain", ref: "llm", want: "llm"},
		{name: "plain with port", ref: "llm:80", want: "llm"},
		{name: "plain with wrong port", ref: "llm:8080", wantErr: []string{`"llm:8080"`, "port 8080 does not match cluster llm's port 80"}},
		{name: "envoy name", ref: "outbound|80||llm", want: "llm"},
		{name: "envoy name subset ignored", ref: "outbound|80|v1|llm", want: "llm"},
		{name: "envoy name wrong port", ref: "outbound|8080||llm", wantErr: []string{"port 8080 does not match cluster llm's port 80"}},
		{name: "static suffix", ref: "outbound|80||llm.static", want: "llm"},
		{name: "dns suffix matches exact name first", ref: "outbound|443||llm.dns", want: "llm.dns"},
		{name: "dns exact name wrong port", ref: "outbound|80||llm.dns", wantErr: []string{"cluster llm.dns's port 443"}},
		{name: "plain name with suffix", ref: "llm.dns", want: "llm.dns"},
		{name: "fqdn exact", ref: "outbound|443||api.openai.com", want: "api.openai.com"},
		{name: "k8s namespace", ref: "outbound|8000||embed.ai.svc.cluster.local", want: "ai/embed"},
		{name: "k8s wrong namespace", ref: "outbound|8000||embed.default.svc.cluster.local", wantErr: []string{`cluster ai/embed is not in namespace "default"`}},
		{name: "k8s default namespace", ref: "outbound|8080||web.default.svc.cluster.local", want: "web"},
		{name: "k8s other namespace without cluster namespace", ref: "outbound|8080||web.prod.svc.cluster.local", wantErr: []string{`not in namespace "prod"`}},
		{name: "k8s picks namespace among duplicates", ref: "outbound|80||dup.b.svc.cluster.local", want: "b/dup"},
		{name: "k8s unknown service", ref: "outbound|80||nope.ai.svc.cluster.local", wantErr: []string{`no cluster is named "nope"`}},
		{name: "consul", ref: "outbound|8500||kv.dc1.consul", want: "kv"},
		{name: "nacos", ref: "outbound|8848|v1|search.DEFAULT-GROUP.public.nacos", want: "search"},
		{name: "nacos-ext", ref: "outbound|8848||search.DEFAULT-GROUP.public.nacos-ext", want: "search"},
		{name: "nacos too few labels", ref: "outbound|8848||search.public.nacos", wantErr: []string{`no cluster is named "search.public.nacos"`}},
		{name: "redis query ignored", ref: "cache?db=1&buffer_flush_timeout=3&max_buffer_size_before_flush=1024", want: "cache"},
		{name: "redis envoy name with query", ref: "outbound|6379||cache.static?db=2", want: "cache"},
		{name: "ambiguous plain", ref: "dup", wantErr: []string{"ambiguous", "a/dup", "b/dup"}},
		{name: "ambiguous stripped", ref: "outbound|80||dup.dns", wantErr: []string{"ambiguous", "a/dup", "b/dup"}},
		{name: "ambiguous default namespace", ref: "twin.default.svc.cluster.local", wantErr: []string{"ambiguous", "twin and default/twin"}},
		{name: "unknown lists known names", ref: "nope", wantErr: []string{`"nope": no cluster is named "nope" (known: api.openai.com, cache, dup,`}},
		{name: "unknown stripped", ref: "outbound|80||nope.dns", wantErr: []string{`no cluster is named "nope"`}},
		{name: "malformed envoy name", ref: "outbound|80|llm", wantErr: []string{"malformed Envoy cluster name"}},
		{name: "envoy name without host", ref: "outbound|80||", wantErr: []string{"malformed Envoy cluster name"}},
		{name: "envoy name bad port", ref: "outbound|x||llm", wantErr: []string{`port "x" is not a number`}},
		{name: "port zero", ref: "llm:0", wantErr: []string{`port "0" is not a number`}},
		{name: "empty", ref: "", wantErr: []string{"empty name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Lookup(tt.ref)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Lookup(%q) = %s, want error", tt.ref, c.displayName())
				}
				if !errors.Is(err, ErrUnknownCluster) {
					t.Errorf("error %v does not wrap ErrUnknownCluster", err)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.ref, err)
			}
			if got := c.displayName(); got != tt.want {
				t.Errorf("Lookup(%q) = %s, want %s", tt.ref, got, tt.want)
			}
		})
	}
}

func TestLookupEnvoyNameOfEveryCluster(t *testing.T) {
	r := lookupRegistry(t)
	for _, c := range r.All() {
		if c.name == "dup" || c.name == "twin" {
			continue // ambiguous by design
		}
		got, err := r.Lookup(c.EnvoyName())
		if err != nil || got != c {
			t.Errorf("Lookup(%q) = %v, %v; want the cluster itself", c.EnvoyName(), got, err)
		}
	}
	c, _ := r.Lookup("llm.dns")
	if got, want := c.EnvoyName(), "outbound|443||llm.dns"; got != want {
		t.Errorf("EnvoyName() = %q, want %q", got, want)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	r := lookupRegistry(t)
	for _, ref := range []string{
		"outbound|80||llm",
		"llm",
		"llm:80",
		"outbound|80|v1|llm.static",
		"outbound|8000||embed.ai.svc.cluster.local",
		"outbound|8848||search.DEFAULT-GROUP.public.nacos",
		"cache?db=1",
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := r.Lookup(ref); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Lookup(%q) allocates %.0f times, want 0", ref, allocs)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	r, err := NewRegistry([]*v1alpha1.Cluster{
		clusterCfg("llm", v1alpha1.ClusterSpec{Port: 80, Endpoints: endpoints("127.0.0.1:1")}),
	}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, ref := range []string{"outbound|80||llm", "outbound|80||llm.dns"} {
		b.Run(ref, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Lookup(ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
