package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

// routingGateway starts a gateway whose routes each send to their own echo
// upstream named like the route, so the answer tells which route matched.
// Routes are declared in an order different from their specificity.
func routingGateway(t *testing.T) (*gw, map[string]*echoUpstream) {
	t.Helper()
	routes := []struct{ name, spec string }{
		// Hosts: exact, wildcard (longer wins), catch-all.
		{"host-any", `hosts: ["*"], match: {path: {prefix: /catch/}}`},
		{"host-wild", `hosts: ["*.example.com"]`},
		{"host-exact", `hosts: [api.example.com]`},
		{"host-wild-long", `hosts: ["*.deep.example.com"]`},
		// Paths on one host: exact > longer prefix > shorter prefix > regex > any.
		{"p-short", `hosts: [paths.test], match: {path: {prefix: /v1/}}`},
		{"p-any", `hosts: [paths.test]`},
		{"p-regex", `hosts: [paths.test], match: {path: {regex: "/items/[0-9]+"}}`},
		{"p-exact", `hosts: [paths.test], match: {path: {exact: /v1/models}}`},
		{"p-long", `hosts: [paths.test], match: {path: {prefix: /v1/chat/}}`},
		// Methods: the route with the extra condition wins when it holds.
		{"m-any", `hosts: [methods.test], match: {path: {exact: /m}}`},
		{"m-write", `hosts: [methods.test], match: {path: {exact: /m}, methods: [POST, put]}`},
		// Headers: exact, regex, present, absent.
		{"h-none", `hosts: [headers.test], match: {path: {prefix: /h}}`},
		{"h-exact", `hosts: [headers.test], match: {path: {prefix: /h}, headers: [{name: x-tier, exact: gold}]}`},
		{"h-regex", `hosts: [headers.test], match: {path: {prefix: /h}, headers: [{name: X-Tier, regex: "silver|bronze"}]}`},
		{"h-present", `hosts: [headers.test], match: {path: {prefix: /h}, headers: [{name: x-debug, present: true}]}`},
		{"h-absent", `hosts: [headers.test], match: {path: {prefix: /h/absent}, headers: [{name: x-debug, present: false}]}`},
		// Rewrites.
		{"rw-prefix", `hosts: [rewrite.test], match: {path: {prefix: /old/}}, rewrite: {pathPrefix: /new/}`},
		{"rw-path", `hosts: [rewrite.test], match: {path: {exact: /exact}}, rewrite: {path: /replaced}`},
		{"rw-host", `hosts: [rewrite.test], match: {path: {prefix: /h/}}, rewrite: {host: "backend.internal:9000"}`},
	}
	ups := map[string]*echoUpstream{}
	var docs []string
	for _, r := range routes {
		u := newEchoUpstream(t, r.name)
		ups[r.name] = u
		docs = append(docs, clusterDoc(r.name, []string{u.addr()}), routeDoc(r.name, r.spec, "cluster: "+r.name))
	}
	return startGateway(t, gwConfig{Docs: docs}), ups
}

func TestRoutingMatrix(t *testing.T) {
	g, _ := routingGateway(t)
	cases := []struct {
		name     string
		method   string
		host     string
		path     string
		header   []string
		upstream string
		uri      string // as the upstream received it; default path
		upHost   string // Host the upstream received; default host
	}{
		{name: "exact host", host: "api.example.com", path: "/x", upstream: "host-exact"},
		{name: "exact host with port", host: "api.example.com:8443", path: "/x", upstream: "host-exact"},
		{name: "exact host case-insensitive", host: "API.Example.COM", path: "/x", upstream: "host-exact"},
		{name: "wildcard host", host: "foo.example.com", path: "/x", upstream: "host-wild"},
		{name: "wildcard host with port", host: "foo.example.com:8080", path: "/x", upstream: "host-wild"},
		{name: "wildcard multi-label", host: "a.b.example.com", path: "/x", upstream: "host-wild"},
		{name: "longer wildcard wins", host: "x.deep.example.com:80", path: "/x", upstream: "host-wild-long"},
		{name: "wildcard does not match bare domain", host: "example.com", path: "/catch/1", upstream: "host-any"},
		{name: "catch-all host", host: "other.org:1234", path: "/catch/z?q=1", upstream: "host-any"},

		{name: "path exact", host: "paths.test", path: "/v1/models", upstream: "p-exact"},
		{name: "path exact ignores query", host: "paths.test", path: "/v1/models?limit=2", upstream: "p-exact"},
		{name: "path exact is not a prefix", host: "paths.test", path: "/v1/models/m1", upstream: "p-short"},
		{name: "longer prefix", host: "paths.test", path: "/v1/chat/completions", upstream: "p-long"},
		{name: "shorter prefix", host: "paths.test", path: "/v1/embeddings", upstream: "p-short"},
		{name: "regex", host: "paths.test", path: "/items/42", upstream: "p-regex"},
		{name: "regex must match whole path", host: "paths.test", path: "/items/42/x", upstream: "p-any"},
		{name: "regex no match", host: "paths.test", path: "/items/abc", upstream: "p-any"},
		{name: "no path match", host: "paths.test", path: "/", upstream: "p-any"},

		{name: "method GET", method: "GET", host: "methods.test", path: "/m", upstream: "m-any"},
		{name: "method POST", method: "POST", host: "methods.test", path: "/m", upstream: "m-write"},
		{name: "method PUT (lower case in config)", method: "PUT", host: "methods.test", path: "/m", upstream: "m-write"},
		{name: "method DELETE", method: "DELETE", host: "methods.test", path: "/m", upstream: "m-any"},

		{name: "header none", host: "headers.test", path: "/h", upstream: "h-none"},
		{name: "header exact", host: "headers.test", path: "/h", header: []string{"X-Tier", "gold"}, upstream: "h-exact"},
		{name: "header exact is exact", host: "headers.test", path: "/h", header: []string{"X-Tier", "golden"}, upstream: "h-none"},
		{name: "header regex", host: "headers.test", path: "/h", header: []string{"x-tier", "bronze"}, upstream: "h-regex"},
		{name: "header regex whole value", host: "headers.test", path: "/h", header: []string{"x-tier", "silvery"}, upstream: "h-none"},
		{name: "header present", host: "headers.test", path: "/h/1", header: []string{"X-Debug", ""}, upstream: "h-present"},
		{name: "header absent", host: "headers.test", path: "/h/absent", upstream: "h-absent"},
		{name: "header absent fails when present", host: "headers.test", path: "/h/absent", header: []string{"X-Debug", "1"}, upstream: "h-present"},

		{name: "rewrite path prefix", host: "rewrite.test", path: "/old/a/b?q=1", upstream: "rw-prefix", uri: "/new/a/b?q=1"},
		{name: "rewrite whole path keeps query", host: "rewrite.test", path: "/exact?x=y", upstream: "rw-path", uri: "/replaced?x=y"},
		{name: "rewrite host", host: "rewrite.test", path: "/h/k", upstream: "rw-host", upHost: "backend.internal:9000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, g.url(c.path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = c.host
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header[http.CanonicalHeaderKey(c.header[i])] = []string{c.header[i+1]}
			}
			resp, body := g.do(req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
			}
			seen := decodeSeen(t, body)
			if seen.Upstream != c.upstream {
				t.Errorf("%s %s%s went to %q, want %q", method, c.host, c.path, seen.Upstream, c.upstream)
			}
			wantURI := c.uri
			if wantURI == "" {
				wantURI = c.path
			}
			if seen.URI != wantURI {
				t.Errorf("upstream got URI %q, want %q", seen.URI, wantURI)
			}
			wantHost := c.upHost
			if wantHost == "" {
				wantHost = c.host
			}
			if seen.Host != wantHost {
				t.Errorf("upstream got Host %q, want %q", seen.Host, wantHost)
			}
			if seen.Method != method {
				t.Errorf("upstream got method %q, want %q", seen.Method, method)
			}
		})
	}
}

func TestRouteNotFound(t *testing.T) {
	g, ups := routingGateway(t)
	resp, body := g.get("nowhere.org", "/nothing", "X-Request-Id", "nf-1")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404; body %s", resp.StatusCode, body)
	}
	e := decodeGatewayError(t, resp, body)
	if e.Error.Code != "route_not_found" {
		t.Errorf("error code %q, want route_not_found; body %s", e.Error.Code, body)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "nf-1" {
		t.Errorf("X-Request-Id on the 404 is %q, want nf-1", got)
	}
	for name, u := range ups {
		if n := len(u.requests()); n != 0 {
			t.Errorf("upstream %s got %d requests for an unrouted request", name, n)
		}
	}
	a := g.waitAccess("nf-1")
	if a.Status != 404 || a.ResponseDetails != "route_not_found" || a.Route != "" || a.Cluster != "" {
		t.Errorf("access log: status %d details %q route %q cluster %q; want 404 route_not_found and no route/cluster",
			a.Status, a.ResponseDetails, a.Route, a.Cluster)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestForwardingHeaders(t *testing.T) {
	g, _ := routingGateway(t)

	t.Run("x-forwarded-for and proto set", func(t *testing.T) {
		_, body := g.get("api.example.com", "/fwd")
		seen := decodeSeen(t, body)
		if got := seen.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want [127.0.0.1]", got)
		}
		if got := seen.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
			t.Errorf("X-Forwarded-Proto %q, want [http]", got)
		}
	})
	t.Run("x-forwarded-for appended, proto overwritten", func(t *testing.T) {
		_, body := g.get("api.example.com", "/fwd", "X-Forwarded-For", "10.1.2.3", "X-Forwarded-Proto", "https")
		seen := decodeSeen(t, body)
		if got := seen.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "10.1.2.3, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q, want [10.1.2.3, 127.0.0.1]", got)
		}
		if got := seen.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
			t.Errorf("X-Forwarded-Proto %q, want [http] (the client's value must not pass)", got)
		}
	})
	t.Run("x-request-id generated", func(t *testing.T) {
		_, body := g.get("api.example.com", "/rid")
		seen := decodeSeen(t, body)
		ids := seen.Header.Values("X-Request-Id")
		if len(ids) != 1 || !uuidRE.MatchString(ids[0]) {
			t.Fatalf("X-Request-Id at the upstream %q, want one UUIDv4", ids)
		}
		if a := g.waitAccess(ids[0]); a.Path != "/rid" {
			t.Errorf("access log line for %s has path %q, want /rid", ids[0], a.Path)
		}
	})
	t.Run("x-request-id kept", func(t *testing.T) {
		_, body := g.get("api.example.com", "/rid", "X-Request-Id", "client-chosen-42")
		seen := decodeSeen(t, body)
		if got := seen.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "client-chosen-42" {
			t.Errorf("X-Request-Id at the upstream %q, want [client-chosen-42]", got)
		}
	})
	t.Run("generated ids differ", func(t *testing.T) {
		seenIDs := map[string]bool{}
		for range 20 {
			_, body := g.get("api.example.com", "/rid")
			id := decodeSeen(t, body).Header.Get("X-Request-Id")
			if seenIDs[id] {
				t.Fatalf("request id %s generated twice", id)
			}
			seenIDs[id] = true
		}
	})
	t.Run("hop-by-hop headers not forwarded", func(t *testing.T) {
		// Raw bytes, so that exactly these headers reach the gateway.
		req := "GET /hop HTTP/1.1\r\n" +
			"Host: api.example.com\r\n" +
			"Connection: close, X-Hop-Secret\r\n" +
			"X-Hop-Secret: do-not-forward\r\n" +
			"Keep-Alive: timeout=5\r\n" +
			"Upgrade: foo/1\r\n" +
			"Proxy-Connection: keep-alive\r\n" +
			"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
			"TE: gzip\r\n" +
			"X-End-To-End: kept\r\n" +
			"\r\n"
		resp, body := rawExchange(t, g.addr("main"), req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d; body %s", resp.StatusCode, body)
		}
		seen := decodeSeen(t, body)
		for _, h := range []string{"Connection", "X-Hop-Secret", "Keep-Alive", "Upgrade", "Proxy-Connection", "Proxy-Authorization", "Te"} {
			if v, ok := seen.Header[h]; ok {
				t.Errorf("hop-by-hop header %s: %q reached the upstream", h, v)
			}
		}
		if got := seen.Header.Get("X-End-To-End"); got != "kept" {
			t.Errorf("X-End-To-End at the upstream %q, want kept", got)
		}
	})
	t.Run("hop-by-hop response headers not returned", func(t *testing.T) {
		// An upstream that names a header in Connection.
		up := newHopUpstream(t)
		g2 := startGateway(t, gwConfig{Docs: []string{
			clusterDoc("hop", []string{up}),
			routeDoc("hop", "cluster: hop"),
		}})
		resp, _ := g2.get("", "/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, h := range []string{"X-Resp-Hop", "Keep-Alive"} {
			if v, ok := resp.Header[h]; ok {
				t.Errorf("hop-by-hop response header %s: %q reached the client", h, v)
			}
		}
		if got := resp.Header.Get("X-Resp-End"); got != "kept" {
			t.Errorf("X-Resp-End at the client %q, want kept", got)
		}
	})
}

// newHopUpstream answers with hop-by-hop response headers.
func newHopUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "secret")
		h.Set("Keep-Alive", "timeout=99")
		h.Set("X-Resp-End", "kept")
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
