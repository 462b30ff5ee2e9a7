package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUpstreamFailures checks the gateway's own answers when an upstream
// cannot be reached, is too slow, or breaks the connection.
func TestUpstreamFailures(t *testing.T) {
	slowCancelled := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			slowCancelled <- struct{}{}
		case <-time.After(2 * waitLimit):
		}
	}))
	t.Cleanup(slow.Close)
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		c.Close()
	}))
	t.Cleanup(reset.Close)
	late := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Repeat("x", 1000)))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // cut the connection mid-body
	}))
	t.Cleanup(late.Close)

	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("down", []string{closedAddr(t)}),
		clusterDoc("slow", []string{slow.Listener.Addr().String()}),
		clusterDoc("reset", []string{reset.Listener.Addr().String()}),
		clusterDoc("late", []string{late.Listener.Addr().String()}),
		routeDoc("down", "match: {path: {prefix: /down}}", "cluster: down"),
		routeDoc("slow", "match: {path: {prefix: /slow}}", "cluster: slow", "timeout: 200ms"),
		routeDoc("reset", "match: {path: {prefix: /reset}}", "cluster: reset"),
		routeDoc("late", "match: {path: {prefix: /late}}", "cluster: late"),
	}})

	cases := []struct {
		path    string
		status  int
		details string
		kind    string
	}{
		{"/down", http.StatusServiceUnavailable, "upstream_connect_failure", "connect"},
		{"/slow", http.StatusGatewayTimeout, "upstream_response_timeout", "timeout"},
		{"/reset", http.StatusBadGateway, "upstream_reset_before_response_started", "reset"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/"), func(t *testing.T) {
			id := "fail" + strings.ReplaceAll(c.path, "/", "-")
			start := time.Now()
			resp, body := g.get("", c.path, "X-Request-Id", id)
			elapsed := time.Since(start)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, body)
			}
			e := decodeGatewayError(t, resp, body)
			if e.Error.Code != c.details {
				t.Errorf("error code %q, want %q; body %s", e.Error.Code, c.details, body)
			}
			if got := resp.Header.Get("X-Request-Id"); got != id {
				t.Errorf("X-Request-Id on the reply %q, want %q", got, id)
			}
			a := g.waitAccess(id)
			if a.Status != c.status || a.ResponseDetails != c.details {
				t.Errorf("access log: status %d details %q, want %d %q", a.Status, a.ResponseDetails, c.status, c.details)
			}
			cluster := strings.TrimPrefix(c.path, "/")
			if a.Cluster != cluster || a.Route != cluster {
				t.Errorf("access log: route %q cluster %q, want %q", a.Route, a.Cluster, cluster)
			}
			if v, _ := g.metric("sluice_upstream_errors_total", map[string]string{"cluster": cluster, "kind": c.kind}); v != 1 {
				t.Errorf("sluice_upstream_errors_total{cluster=%q,kind=%q} = %v, want 1", cluster, c.kind, v)
			}
			if c.path == "/slow" {
				if elapsed < 200*time.Millisecond {
					t.Errorf("504 after %s, before the 200ms route timeout", elapsed)
				}
				receive(t, "the slow upstream's request to be cancelled", slowCancelled)
			}
		})
	}

	t.Run("reset after response started", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, g.url("/late"), nil)
		req.Header.Set("X-Request-Id", "fail-late")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want the upstream's 200", resp.StatusCode)
		}
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("the client read a complete body of %d bytes: a cut upstream response must not look complete", len(body))
		}
		a := g.waitAccess("fail-late")
		if a.ResponseDetails != "upstream_reset_after_response_started" {
			t.Errorf("access log details %q, want upstream_reset_after_response_started", a.ResponseDetails)
		}
		if v, _ := g.metric("sluice_upstream_errors_total", map[string]string{"cluster": "late", "kind": "reset"}); v != 1 {
			t.Errorf("sluice_upstream_errors_total{cluster=late,kind=reset} = %v, want 1", v)
		}
	})
}
