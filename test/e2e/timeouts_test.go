package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRouteTimeoutExcludesSlowUpload checks that the route timeout bounds
// the wait for the upstream's response headers (API: "Timeout bounds the
// wait for the upstream's response headers"), not the time the client
// takes to send its body: an upstream that answers as soon as the body is
// complete must not be cut off with 504 because the upload was slow.
// (Envoy starts the route timeout when the downstream request is complete.)
func TestRouteTimeoutExcludesSlowUpload(t *testing.T) {
	const routeTimeout = 500 * time.Millisecond
	gotFirst := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 8)
		if n, _ := r.Body.Read(buf); n > 0 {
			gotFirst <- struct{}{}
		}
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		io.WriteString(w, "received "+string(buf[:min(len(buf), 5)])+string(rest))
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("upload", "cluster: up", "timeout: "+routeTimeout.String()),
	}})

	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "first")
		select {
		case <-gotFirst:
		case <-time.After(waitLimit):
		}
		// A slow client: the rest of the body comes well after the route
		// timeout would have expired had it started with the request.
		time.Sleep(2 * routeTimeout)
		_, _ = io.WriteString(pw, "-second")
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, g.url("/upload"), pr)
	req.Header.Set("X-Request-Id", "slow-upload")
	resp, body := g.do(req)
	if resp.StatusCode != http.StatusOK || string(body) != "received first-second" {
		t.Errorf("slow upload answered %d %s; want the upstream's 200 (the upstream answered at once after the body)", resp.StatusCode, body)
	}
}

// TestRequestTimeout checks spec.timeouts.request, the bound on a whole
// exchange: 504 before the response started, a cut stream after, both
// logged as request_overall_timeout.
func TestRequestTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.WriteHeader(http.StatusOK)
			for {
				if _, err := io.WriteString(w, "tick\n"); err != nil {
					return
				}
				http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{
		Spec: []string{"timeouts: {request: 300ms}"},
		Docs: []string{clusterDoc("up", []string{up.Listener.Addr().String()}), routeDoc("up", "cluster: up")},
	})

	t.Run("before the response", func(t *testing.T) {
		resp, body := g.get("", "/hang", "X-Request-Id", "rt-hang")
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504; body %s", resp.StatusCode, body)
		}
		if e := decodeGatewayError(t, resp, body); e.Error.Code != "request_overall_timeout" {
			t.Errorf("error code %q, want request_overall_timeout", e.Error.Code)
		}
		if a := g.waitAccess("rt-hang"); a.ResponseDetails != "request_overall_timeout" {
			t.Errorf("access log details %q, want request_overall_timeout", a.ResponseDetails)
		}
	})
	t.Run("during the response", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/stream"), nil)
		req.Header.Set("X-Request-Id", "rt-stream")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("the stream cut by the request timeout ended cleanly after %d ticks; it must not look complete", strings.Count(string(body), "tick"))
		}
		a := g.waitAccess("rt-stream")
		if a.ResponseDetails != "request_overall_timeout" {
			t.Errorf("access log details %q, want request_overall_timeout (the upstream did not reset; the gateway's request timeout cut the stream)", a.ResponseDetails)
		}
	})
}
