package e2e

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientAbort checks that a client going away cancels the upstream
// request and is recorded in the access log.
func TestClientAbort(t *testing.T) {
	arrived := make(chan string, 4)   // path, when the upstream has the request
	cancelled := make(chan string, 4) // path, when the upstream's context ended
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("data: first\n\n"))
			http.NewResponseController(w).Flush()
		}
		arrived <- r.URL.Path
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(2 * waitLimit):
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("up", "cluster: up"),
	}})

	t.Run("mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/stream"), nil)
		req.Header.Set("X-Request-Id", "abort-mid-stream")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		if p := receive(t, "the upstream to get the request", arrived); p != "/stream" {
			t.Fatalf("upstream got %s", p)
		}
		cancel()
		resp.Body.Close()
		if p := receive(t, "the upstream's request context to be cancelled", cancelled); p != "/stream" {
			t.Fatalf("cancelled %s", p)
		}
		a := g.waitAccess("abort-mid-stream")
		if a.ResponseDetails != "downstream_remote_disconnect" || (a.Status != 200 && a.Status != 499) {
			t.Errorf("access log: status %d details %q; want 200 (partial) or 499 with downstream_remote_disconnect", a.Status, a.ResponseDetails)
		}
		if a.Status == 200 && a.BytesOut == 0 {
			t.Errorf("access log: partial response with bytes_out 0; the first event was delivered")
		}
	})

	t.Run("before response headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url("/wait"), nil)
		req.Header.Set("X-Request-Id", "abort-before-headers")
		errCh := make(chan error, 1)
		go func() {
			resp, err := g.client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errCh <- err
		}()
		if p := receive(t, "the upstream to get the request", arrived); p != "/wait" {
			t.Fatalf("upstream got %s", p)
		}
		cancel()
		if err := receive(t, "the client to give up", errCh); err == nil {
			t.Errorf("the cancelled request succeeded")
		}
		if p := receive(t, "the upstream's request context to be cancelled", cancelled); p != "/wait" {
			t.Fatalf("cancelled %s", p)
		}
		a := g.waitAccess("abort-before-headers")
		if a.Status != 499 || a.ResponseDetails != "downstream_remote_disconnect" {
			t.Errorf("access log: status %d details %q; want 499 downstream_remote_disconnect", a.Status, a.ResponseDetails)
		}
	})

	// Nothing is left behind: the in-flight gauge returns to zero.
	eventually(t, "sluice_http_requests_in_flight to return to 0", func() bool {
		v, ok := g.metric("sluice_http_requests_in_flight", nil)
		return ok && v == 0
	})
}
