package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestLimits checks the answers to requests over the configured limits and
// to malformed HTTP.
func TestLimits(t *testing.T) {
	const maxHeader, maxBody = 4096, 1024
	up := newEchoUpstream(t, "up")
	g := startGateway(t, gwConfig{
		Spec: []string{
			fmt.Sprintf("limits: {maxHeaderBytes: %d, maxRequestBodyBytes: %d}", maxHeader, maxBody),
			// Go's server answers a request shorter than the h2c preface
			// only when the header read times out; keep that short.
			"timeouts: {readHeader: 2s}",
		},
		Docs: []string{clusterDoc("up", []string{up.addr()}), routeDoc("up", "cluster: up")},
	})

	t.Run("headers over maxHeaderBytes", func(t *testing.T) {
		// Well over the limit: Go's server allows some slack above
		// MaxHeaderBytes, so the test stays clear of the boundary.
		resp, body := g.get("", "/big-header", "X-Big", strings.Repeat("h", 4*maxHeader))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431; body %s", resp.StatusCode, body)
		}
	})
	t.Run("headers under maxHeaderBytes", func(t *testing.T) {
		resp, body := g.get("", "/ok-header", "X-Big", strings.Repeat("h", maxHeader/2))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200; body %s", resp.StatusCode, body)
		}
	})
	t.Run("malformed request", func(t *testing.T) {
		resp, body := rawExchange(t, g.addr("main"), "GARBAGE\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400; body %s", resp.StatusCode, body)
		}
	})

	before := len(up.requests())
	t.Run("body over limit with Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.url("/upload"), bytes.NewReader(make([]byte, 4*maxBody)))
		req.Header.Set("X-Request-Id", "too-large-cl")
		resp, body := g.do(req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413; body %s", resp.StatusCode, body)
		}
		if e := decodeGatewayError(t, resp, body); e.Error.Code != "request_body_too_large" {
			t.Errorf("error code %q, want request_body_too_large", e.Error.Code)
		}
		if a := g.waitAccess("too-large-cl"); a.Status != 413 || a.ResponseDetails != "request_body_too_large" {
			t.Errorf("access log: status %d details %q, want 413 request_body_too_large", a.Status, a.ResponseDetails)
		}
		if n := len(up.requests()) - before; n != 0 {
			t.Errorf("the upstream got %d requests; a body known to be too large must not be forwarded", n)
		}
	})
	t.Run("body over limit, chunked", func(t *testing.T) {
		// A reader of unknown size makes the client send chunked.
		req, _ := http.NewRequest(http.MethodPost, g.url("/upload"), io.MultiReader(bytes.NewReader(make([]byte, 4*maxBody))))
		req.Header.Set("X-Request-Id", "too-large-chunked")
		if req.ContentLength != 0 {
			t.Fatalf("request has Content-Length %d; the case needs chunked", req.ContentLength)
		}
		resp, body := g.do(req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413; body %s", resp.StatusCode, body)
		}
		if e := decodeGatewayError(t, resp, body); e.Error.Code != "request_body_too_large" {
			t.Errorf("error code %q, want request_body_too_large", e.Error.Code)
		}
		if a := g.waitAccess("too-large-chunked"); a.Status != 413 || a.ResponseDetails != "request_body_too_large" {
			t.Errorf("access log: status %d details %q, want 413 request_body_too_large", a.Status, a.ResponseDetails)
		}
		for _, s := range up.requests()[before:] {
			if s.BodyBytes > maxBody {
				t.Errorf("the upstream read a whole body of %d bytes, over the %d-byte limit", s.BodyBytes, maxBody)
			}
		}
	})
	t.Run("body at limit, chunked", func(t *testing.T) {
		payload := bytes.Repeat([]byte("b"), maxBody)
		req, _ := http.NewRequest(http.MethodPost, g.url("/upload"), io.MultiReader(bytes.NewReader(payload)))
		resp, body := g.do(req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
		}
		if s := decodeSeen(t, body); s.BodyBytes != maxBody || s.BodySHA != sha(payload) {
			t.Errorf("upstream got %d bytes (sha %s), want %d", s.BodyBytes, s.BodySHA, maxBody)
		}
	})
	t.Run("body over limit, concurrent", func(t *testing.T) {
		// The 413 must not depend on timing: run a few at once.
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		for i := range statuses {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, g.url("/upload"), io.MultiReader(bytes.NewReader(make([]byte, 2*maxBody))))
				resp, err := g.client.Do(req)
				if err != nil {
					statuses[i] = -1
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusRequestEntityTooLarge {
				t.Errorf("request %d: status %d, want 413", i, s)
			}
		}
	})
}
