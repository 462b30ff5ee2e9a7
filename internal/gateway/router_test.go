package gateway

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/config"
)

// routeTable compiles routes (YAML documents) against clusters c1 and c2.
func routeTable(t *testing.T, routes string) *RouteTable {
	t.Helper()
	docs := `apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata:
  name: c1
spec:
  endpoints:
    - address: 127.0.0.1:1
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata:
  name: c2
spec:
  endpoints:
    - address: 127.0.0.1:2
` + routes
	snap, err := config.Parse("routes.yaml", []byte(docs))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", docs, err)
	}
	reg, err := cluster.NewRegistry(snap.Clusters, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	rt, err := NewRouteTable(snap.Routes, reg, config.RouteName)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// route renders one Route document; spec lines are indented two spaces.
func route(name string, spec ...string) string {
	return "---\napiVersion: sluice.dev/v1alpha1\nkind: Route\nmetadata:\n  name: " + name +
		"\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

func TestRouteMatchMatrix(t *testing.T) {
	// Declared least specific first: the order of the table must come from
	// specificity, not from declaration.
	rt := routeTable(t,
		route("catch-all", "cluster: c1")+
			route("models-anyhost", "match: {path: {exact: /v1/models}}", "cluster: c1")+
			route("wild-host", `hosts: ["*.example.com"]`, "cluster: c1")+
			route("wild-long", `hosts: ["*.eu.example.com"]`, "cluster: c1")+
			route("exact-host", `hosts: ["api.example.com"]`, "cluster: c1")+
			route("v6", `hosts: ["[::1]"]`, "cluster: c1")+
			route("paths-any", `hosts: [paths.test]`, "cluster: c1")+
			route("path-regex", `hosts: [paths.test]`, `match: {path: {regex: "/v2/[a-z]+/[0-9]+"}}`, "cluster: c1")+
			route("path-prefix-short", `hosts: [paths.test]`, "match: {path: {prefix: /v1/}}", "cluster: c1")+
			route("path-prefix-long", `hosts: [paths.test]`, "match: {path: {prefix: /v1/chat/}}", "cluster: c1")+
			route("path-exact", `hosts: [paths.test]`, "match: {path: {exact: /v1/models}}", "cluster: c1")+
			route("any-method", `hosts: [methods.test]`, "cluster: c1")+
			route("post-only", `hosts: [methods.test]`, "match: {methods: [post]}", "cluster: c1")+
			route("hdr-fallback", `hosts: [headers.test]`, "cluster: c1")+
			route("hdr-exact", `hosts: [headers.test]`, "match: {headers: [{name: X-Tenant, exact: acme}]}", "cluster: c1")+
			route("hdr-regex", `hosts: [headers.test]`, `match: {headers: [{name: x-tenant, regex: "team-[0-9]+"}]}`, "cluster: c1")+
			route("hdr-present", `hosts: [headers.test]`, "match: {headers: [{name: x-debug, present: true}]}", "cluster: c1")+
			route("hdr-absent", `hosts: [headers.test]`, "match: {headers: [{name: x-canary, present: false}]}", "cluster: c1"))

	cases := []struct {
		name      string
		authority string
		path      string
		method    string
		headers   []HeaderField
		want      string
	}{
		{"exact host", "api.example.com", "/", "GET", nil, "exact-host"},
		{"exact host with port", "api.example.com:8443", "/x", "GET", nil, "exact-host"},
		{"host is case-insensitive", "API.Example.COM", "/", "GET", nil, "exact-host"},
		{"exact host beats path-only route", "api.example.com", "/v1/models", "GET", nil, "exact-host"},
		{"wildcard", "a.example.com", "/", "GET", nil, "wild-host"},
		{"wildcard with port", "a.example.com:80", "/", "GET", nil, "wild-host"},
		{"wildcard, deeper label", "x.y.example.com", "/", "GET", nil, "wild-host"},
		{"longer wildcard first", "x.eu.example.com", "/", "GET", nil, "wild-long"},
		{"wildcard skips the apex", "example.com", "/", "GET", nil, "catch-all"},
		{"bracketed IPv6 with port", "[::1]:8080", "/", "GET", nil, "v6"},
		{"bracketed IPv6", "[::1]", "/", "GET", nil, "v6"},
		{"catch-all", "unknown.test", "/anything", "GET", nil, "catch-all"},
		{"path-only route beats catch-all", "unknown.test", "/v1/models", "GET", nil, "models-anyhost"},
		{"exact path", "paths.test", "/v1/models", "GET", nil, "path-exact"},
		{"query ignored", "paths.test", "/v1/models?limit=1", "GET", nil, "path-exact"},
		{"exact path is exact", "paths.test", "/v1/models/x", "GET", nil, "path-prefix-short"},
		{"longer prefix first", "paths.test", "/v1/chat/completions", "GET", nil, "path-prefix-long"},
		{"shorter prefix", "paths.test", "/v1/embeddings", "GET", nil, "path-prefix-short"},
		{"regex", "paths.test", "/v2/items/42", "GET", nil, "path-regex"},
		{"regex anchored at the end", "paths.test", "/v2/items/42/x", "GET", nil, "paths-any"},
		{"regex anchored at the start", "paths.test", "/x/v2/items/42", "GET", nil, "paths-any"},
		{"regex, query ignored", "paths.test", "/v2/items/42?q=1", "GET", nil, "path-regex"},
		{"no path matcher", "paths.test", "/other", "GET", nil, "paths-any"},
		{"method matches", "methods.test", "/", "POST", nil, "post-only"},
		{"method does not match", "methods.test", "/", "GET", nil, "any-method"},
		{"header exact", "headers.test", "/", "GET", []HeaderField{{"x-tenant", "acme"}, {"x-canary", "1"}}, "hdr-exact"},
		{"header name case-insensitive", "headers.test", "/", "GET", []HeaderField{{"X-TENANT", "acme"}, {"x-canary", "1"}}, "hdr-exact"},
		{"header exact is exact", "headers.test", "/", "GET", []HeaderField{{"x-tenant", "acme2"}, {"x-canary", "1"}}, "hdr-fallback"},
		{"header regex", "headers.test", "/", "GET", []HeaderField{{"x-tenant", "team-42"}, {"x-canary", "1"}}, "hdr-regex"},
		{"header regex anchored", "headers.test", "/", "GET", []HeaderField{{"x-tenant", "xteam-42"}, {"x-canary", "1"}}, "hdr-fallback"},
		{"header present", "headers.test", "/", "GET", []HeaderField{{"x-debug", ""}, {"x-canary", "1"}}, "hdr-present"},
		{"header absent", "headers.test", "/", "GET", nil, "hdr-absent"},
		{"header absent fails when present", "headers.test", "/", "GET", []HeaderField{{"x-canary", "1"}}, "hdr-fallback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHeaders(tc.headers...)
			r := rt.Match(tc.authority, tc.path, tc.method, h)
			got := "<nil>"
			if r != nil {
				got = r.Name
			}
			if got != tc.want {
				t.Errorf("Match(%q, %q, %s, %v) = %s, want %s", tc.authority, tc.path, tc.method, tc.headers, got, tc.want)
			}
			// The same through the http.Header adapter the server uses.
			hh := httpHeaderSource{}
			for _, f := range tc.headers {
				k := canonicalKey(f.Name)
				hh[k] = append(hh[k], f.Value)
			}
			if r2 := rt.Match(tc.authority, tc.path, tc.method, hh); r2 != r {
				t.Errorf("http.Header source matched a different route")
			}
		})
	}
}

func TestRouteMatchNone(t *testing.T) {
	rt := routeTable(t, route("only", `hosts: ["api.example.com"]`, "match: {path: {prefix: /v1/}}", "cluster: c1"))
	for _, c := range []struct{ authority, path string }{
		{"other.example.com", "/v1/x"},
		{"api.example.com", "/v2/x"},
		{"api.example.com", "/v1"},
	} {
		if r := rt.Match(c.authority, c.path, "GET", NewHeaders()); r != nil {
			t.Errorf("Match(%q, %q) = %s, want none", c.authority, c.path, r.Name)
		}
	}
}

func TestRouteNamespacedName(t *testing.T) {
	rt := routeTable(t, "---\napiVersion: sluice.dev/v1alpha1\nkind: Route\nmetadata:\n  name: chat\n  namespace: team-a\nspec:\n  cluster: c1\n")
	if r := rt.Match("x", "/", "GET", NewHeaders()); r == nil || r.Name != "team-a/chat" {
		t.Fatalf("got %v, want team-a/chat", r)
	}
}

func TestRouteRewritePath(t *testing.T) {
	cases := []struct {
		name  string
		spec  []string
		in    string
		want  string
		host  string
		match bool
	}{
		{"prefix", []string{"match: {path: {prefix: /api/}}", "rewrite: {pathPrefix: /v1/}"}, "/api/chat?x=1", "/v1/chat?x=1", "", true},
		{"prefix, whole prefix", []string{"match: {path: {prefix: /api/}}", "rewrite: {pathPrefix: /v1/}"}, "/api/", "/v1/", "", true},
		{"prefix to root", []string{"match: {path: {prefix: /api/}}", "rewrite: {pathPrefix: /}"}, "/api/chat", "/chat", "", true},
		{"prefix without slash to root", []string{"match: {path: {prefix: /api}}", "rewrite: {pathPrefix: /}"}, "/api/chat", "/chat", "", true},
		{"prefix to prefix", []string{"match: {path: {prefix: /api}}", "rewrite: {pathPrefix: /openai/v1}"}, "/api/chat", "/openai/v1/chat", "", true},
		{"whole path keeps the query", []string{"match: {path: {exact: /old}}", "rewrite: {path: /new}"}, "/old?keep=1", "/new?keep=1", "", true},
		{"whole path on a prefix route", []string{"match: {path: {prefix: /p/}}", "rewrite: {path: /fixed}"}, "/p/a/b", "/fixed", "", true},
		{"host only", []string{"match: {path: {prefix: /h/}}", "rewrite: {host: upstream.internal:8443}"}, "/h/x?y", "/h/x?y", "upstream.internal:8443", true},
		{"no rewrite", []string{"match: {path: {prefix: /n/}}"}, "/n/x", "/n/x", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := routeTable(t, route("r", append(tc.spec, "cluster: c1")...))
			r := rt.Match("h", tc.in, "GET", NewHeaders())
			if r == nil {
				t.Fatalf("no route for %s", tc.in)
			}
			if got := r.rewritePath(tc.in); got != tc.want {
				t.Errorf("rewritePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			host := ""
			if r.Spec.Rewrite != nil {
				host = r.Spec.Rewrite.Host
			}
			if host != tc.host {
				t.Errorf("rewrite host %q, want %q", host, tc.host)
			}
		})
	}
}

func TestWeightedClustersProportional(t *testing.T) {
	rt := routeTable(t, route("split", "weightedClusters: [{cluster: c1, weight: 3}, {cluster: c2, weight: 1}]"))
	r := rt.Match("h", "/", "GET", NewHeaders())
	if r == nil {
		t.Fatal("no route")
	}
	const n = 20000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[r.pickCluster().Name()]++
	}
	// 75 % expected; the standard deviation is 0.3 %, so ±3 % cannot
	// fail by chance.
	if share := float64(counts["c1"]) / n; share < 0.72 || share > 0.78 {
		t.Errorf("c1 got %.3f of the picks (%v), want about 0.75", share, counts)
	}
	if counts["c1"]+counts["c2"] != n {
		t.Errorf("picks outside the split: %v", counts)
	}
	single := routeTable(t, route("one", "cluster: c2")).Match("h", "/", "GET", NewHeaders())
	for i := 0; i < 10; i++ {
		if c := single.pickCluster(); c.Name() != "c2" {
			t.Fatalf("single-cluster route picked %s", c.Name())
		}
	}
}
