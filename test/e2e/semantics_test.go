package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTPSemantics checks HTTP features a proxy must pass through
// unchanged: trailers both ways, HEAD, 100-continue, status codes without
// a body, redirects and repeated headers.
func TestHTTPSemantics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		case "/request-trailers":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Got-Body", string(body))
			w.Header().Set("X-Got-Trailer", r.Trailer.Get("X-Req-Sum"))
		case "/head":
			w.Header().Set("Content-Length", "1234")
			w.Header().Set("Content-Type", "application/octet-stream")
			if r.Method != http.MethodHead {
				_, _ = w.Write(make([]byte, 1234))
			}
		case "/status":
			code, _ := strconv.Atoi(r.URL.Query().Get("code"))
			if code == http.StatusFound {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(code)
		case "/multi":
			w.Header().Add("Set-Cookie", "a=1")
			w.Header().Add("Set-Cookie", "b=2")
			w.Header().Set("X-Got-Multi", strings.Join(r.Header.Values("X-Multi"), "|"))
		case "/continue":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Got-Body", strconv.Itoa(len(body)))
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("up", "cluster: up"),
	}})

	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2c.CloseIdleConnections)
	clients := map[string]*http.Client{"HTTP/1.1": g.client, "h2c": {Transport: h2c, CheckRedirect: g.client.CheckRedirect}}

	for proto, client := range clients {
		t.Run(proto, func(t *testing.T) {
			do := func(req *http.Request) (*http.Response, []byte) {
				t.Helper()
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
				}
				return resp, body
			}
			t.Run("response trailers", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, g.url("/trailers"), nil)
				resp, body := do(req)
				if string(body) != "body" {
					t.Errorf("body %q", body)
				}
				if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
					t.Errorf("trailer X-Checksum %q, want abc123 (trailers %v)", got, resp.Trailer)
				}
			})
			t.Run("request trailers", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, g.url("/request-trailers"), io.MultiReader(strings.NewReader("payload")))
				req.Trailer = http.Header{"X-Req-Sum": {"sum-1"}}
				resp, _ := do(req)
				if got := resp.Header.Get("X-Got-Body"); got != "payload" {
					t.Errorf("upstream got body %q, want payload", got)
				}
				if got := resp.Header.Get("X-Got-Trailer"); got != "sum-1" {
					t.Errorf("upstream got trailer X-Req-Sum %q, want sum-1", got)
				}
			})
			t.Run("HEAD keeps Content-Length", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodHead, g.url("/head"), nil)
				resp, body := do(req)
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Errorf("status %d, %d body bytes", resp.StatusCode, len(body))
				}
				if resp.ContentLength != 1234 {
					t.Errorf("Content-Length %d, want the upstream's 1234", resp.ContentLength)
				}
			})
			for _, code := range []int{http.StatusNoContent, http.StatusNotModified, http.StatusFound, http.StatusTeapot, http.StatusServiceUnavailable} {
				t.Run("status "+strconv.Itoa(code), func(t *testing.T) {
					req, _ := http.NewRequest(http.MethodGet, g.url("/status?code="+strconv.Itoa(code)), nil)
					resp, body := do(req)
					if resp.StatusCode != code {
						t.Errorf("status %d, want the upstream's %d", resp.StatusCode, code)
					}
					if code == http.StatusFound && resp.Header.Get("Location") != "/elsewhere" {
						t.Errorf("Location %q", resp.Header.Get("Location"))
					}
					if (code == http.StatusNoContent || code == http.StatusNotModified) && len(body) != 0 {
						t.Errorf("%d with a %d-byte body", code, len(body))
					}
				})
			}
			t.Run("repeated headers", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, g.url("/multi"), nil)
				req.Header.Add("X-Multi", "one")
				req.Header.Add("X-Multi", "two")
				resp, _ := do(req)
				if got := resp.Header.Values("Set-Cookie"); strings.Join(got, ";") != "a=1;b=2" {
					t.Errorf("Set-Cookie %q, want [a=1 b=2]", got)
				}
				if got := resp.Header.Get("X-Got-Multi"); got != "one|two" {
					t.Errorf("upstream got X-Multi %q, want one|two", got)
				}
			})
			t.Run("expect 100-continue", func(t *testing.T) {
				tr := &http.Transport{ExpectContinueTimeout: waitLimit}
				if proto == "h2c" {
					tr.Protocols = new(http.Protocols)
					tr.Protocols.SetUnencryptedHTTP2(true)
				}
				defer tr.CloseIdleConnections()
				req, _ := http.NewRequest(http.MethodPost, g.url("/continue"), bytes.NewReader(make([]byte, 5000)))
				req.Header.Set("Expect", "100-continue")
				start := time.Now()
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("X-Got-Body"); got != "5000" {
					t.Errorf("upstream got %q body bytes, want 5000", got)
				}
				// The client waits up to waitLimit for "100 Continue": a
				// gateway that never sends it stalls the upload that long.
				if d := time.Since(start); d > waitLimit/2 {
					t.Errorf("upload took %s: no 100 Continue reached the client", d)
				}
			})
		})
	}
}
