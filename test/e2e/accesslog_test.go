package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestAccessLog checks that every request gets exactly one JSON line
// carrying every documented field with the right values.
func TestAccessLog(t *testing.T) {
	const upstreamDelay = 30 * time.Millisecond
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(upstreamDelay) // the upstream's own latency, measured by the log
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(body))
	}))
	t.Cleanup(up.Close)
	upAddr := up.Listener.Addr().String()
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("backend", []string{upAddr}),
		routeDoc("logged", "hosts: [logs.example.com]", "cluster: backend"),
	}})

	before := time.Now()
	req, _ := http.NewRequest(http.MethodPost, g.url("/v1/echo?x=1"), strings.NewReader("hello world"))
	req.Host = "logs.example.com"
	req.Header.Set("X-Request-Id", "log-1")
	req.Header.Set("User-Agent", "e2e-agent/1.0")
	resp, body := g.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	after := time.Now()
	a := g.waitAccess("log-1")

	fields := []string{
		"time", "listener", "method", "authority", "path", "protocol", "client_addr", "user_agent",
		"status", "route", "cluster", "upstream_host", "duration_ms", "upstream_duration_ms", "ttfb_ms",
		"bytes_in", "bytes_out", "request_id", "response_details", "trace_id",
	}
	for _, f := range fields {
		if _, ok := a.raw[f]; !ok {
			t.Errorf("access log line has no %q field", f)
		}
	}
	var extra []string
	for k := range a.raw {
		if !slices.Contains(fields, k) && k != "ai_log" {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Logf("undocumented fields in the access log: %v", extra)
	}

	ts, err := time.Parse(time.RFC3339Nano, a.Time)
	if err != nil {
		t.Errorf("time %q is not RFC 3339: %v", a.Time, err)
	} else if ts.Before(before.Add(-time.Second)) || ts.After(after) {
		t.Errorf("time %s is outside the request's window [%s, %s]", ts, before, after)
	}
	check := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("listener", a.Listener, "main")
	check("method", a.Method, "POST")
	check("authority", a.Authority, "logs.example.com")
	check("path", a.Path, "/v1/echo?x=1")
	check("protocol", a.Protocol, "HTTP/1.1")
	check("user_agent", a.UserAgent, "e2e-agent/1.0")
	check("status", a.Status, 200)
	check("route", a.Route, "logged")
	check("cluster", a.Cluster, "backend")
	check("upstream_host", a.UpstreamHost, upAddr)
	check("bytes_in", a.BytesIn, int64(len("hello world")))
	check("bytes_out", a.BytesOut, int64(len(body)))
	check("request_id", a.RequestID, "log-1")
	check("response_details", a.ResponseDetails, "via_upstream")
	check("trace_id", a.TraceID, "")
	if host, _, err := net.SplitHostPort(a.ClientAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("client_addr = %q, want 127.0.0.1:<port>", a.ClientAddr)
	}
	ms := float64(upstreamDelay.Microseconds()) / 1000
	if a.UpstreamDurationMS < ms {
		t.Errorf("upstream_duration_ms = %v, want ≥ %v (the upstream's delay)", a.UpstreamDurationMS, ms)
	}
	if a.DurationMS < a.UpstreamDurationMS {
		t.Errorf("duration_ms %v < upstream_duration_ms %v", a.DurationMS, a.UpstreamDurationMS)
	}
	if a.TTFBMS <= 0 || a.TTFBMS > a.DurationMS {
		t.Errorf("ttfb_ms = %v, want in (0, duration_ms %v]", a.TTFBMS, a.DurationMS)
	}
	// The line is written just after the response, so allow a margin; a
	// unit mistake (µs or ns logged as ms) is far outside it.
	if wall := float64(after.Sub(before).Microseconds()) / 1000; a.DurationMS > wall+1000 {
		t.Errorf("duration_ms = %v, far longer than the client's whole exchange (%v ms)", a.DurationMS, wall)
	}

	// A local reply is logged too, without route, cluster or upstream.
	resp, _ = g.get("elsewhere.example.org", "/none", "X-Request-Id", "log-404")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unrouted request: status %d", resp.StatusCode)
	}
	nf := g.waitAccess("log-404")
	if nf.Status != 404 || nf.Route != "" || nf.Cluster != "" || nf.UpstreamHost != "" || nf.ResponseDetails != "route_not_found" || nf.BytesOut == 0 {
		t.Errorf("404 line: status %d route %q cluster %q upstream %q details %q bytes_out %d; want 404, no route/cluster/upstream, route_not_found, the error body's size",
			nf.Status, nf.Route, nf.Cluster, nf.UpstreamHost, nf.ResponseDetails, nf.BytesOut)
	}

	// HTTP/2 is logged as such.
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	req, _ = http.NewRequest(http.MethodGet, g.url("/h2"), nil)
	req.Host = "logs.example.com"
	req.Header.Set("X-Request-Id", "log-h2")
	if resp, err := (&http.Client{Transport: h2c}).Do(req); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if p := g.waitAccess("log-h2").Protocol; !strings.HasPrefix(p, "HTTP/2") {
		t.Errorf("protocol of an h2c request = %q, want HTTP/2", p)
	}

	// Exactly one line per request, also once the gateway has stopped.
	const more = 10
	for i := range more {
		resp, _ := g.get("logs.example.com", "/more", "X-Request-Id", fmt.Sprintf("more-%d", i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	want := 3 + more
	eventually(t, fmt.Sprintf("%d access log lines", want), func() bool { return len(g.accessEntries()) >= want })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := g.app.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	entries := g.accessEntries()
	ids := map[string]int{}
	for _, e := range entries {
		ids[e.RequestID]++
	}
	if len(entries) != want {
		t.Errorf("%d access log lines for %d requests", len(entries), want)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("request %s has %d access log lines", id, n)
		}
	}
}
