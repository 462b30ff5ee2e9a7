package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestProxyForwardsRequestAndBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.Path+" "+string(b))
		io.WriteString(w, "reply")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	px := httptest.NewServer(newProxy(u))
	defer px.Close()

	resp, err := http.Post(px.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "reply" {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("X-Seen"), `POST /v1/chat/completions {"a":1}`; got != want {
		t.Errorf("upstream saw %q, want %q", got, want)
	}
}

// The proxy must pass each SSE event through as it comes, not buffer the
// stream: the client reads the first event while the upstream still holds
// the rest back.
func TestProxyStreamsWithoutBuffering(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	px := httptest.NewServer(newProxy(u))
	defer px.Close()

	resp, err := http.Get(px.URL + "/stream")
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	defer close(release)
	type read struct {
		line string
		err  error
	}
	got := make(chan read, 1)
	go func() {
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		got <- read{line, err}
	}()
	select {
	case r := <-got:
		if r.err != nil || r.line != "data: first\n" {
			t.Errorf("first line %q, %v", r.line, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first event not delivered while the upstream held the stream open: the proxy buffers")
	}
}

func TestParseUpstream(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:9000", "ftp://x", "http://"} {
		if _, err := parseUpstream(bad); err == nil {
			t.Errorf("parseUpstream(%q) accepted", bad)
		}
	}
	if _, err := parseUpstream("http://127.0.0.1:9000"); err != nil {
		t.Errorf("parseUpstream(good): %v", err)
	}
}

// A POST whose answer is an SSE stream must arrive whole. Without full
// duplex, Go's HTTP/1 server closes the request body once the response
// headers go out; the transport's last read of that body (checking it is no
// longer than its Content-Length) then fails and tears down the upstream
// connection mid-stream (golang/go#40747). The race itself shows only under
// load, so this checks its cause: the body stays readable after a flush.
func TestHandlerKeepsBodyReadableAfterFlush(t *testing.T) {
	srv := httptest.NewServer(handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			fmt.Fprintf(w, "read after flush: %v", err)
			return
		}
		fmt.Fprintf(w, "body %s", b)
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got, want := string(b), `body {"stream":true}`; got != want {
		t.Errorf("handler saw %q, want %q", got, want)
	}
}
