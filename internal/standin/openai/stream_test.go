package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

const fiveWords = `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c d"}]}` // "Echo: a b c d" = 5 chunks

func TestStreamAbort(t *testing.T) {
	srv := newServer(t, Options{})
	tests := []struct {
		name        string
		abortAfter  string
		wantContent string
	}{
		{"before any content", "0", ""},
		{"mid-stream", "2", "Echo: a"},
		{"after all content, before the end", "99", "Echo: a b c d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, events, err := postStream(t, srv, fiveWords, map[string]string{"X-Mock-Abort-After": tc.abortAfter})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("stream ended with %v, want unexpected EOF", err)
			}
			got := parseStream(t, events)
			if got.done || got.finish != "" {
				t.Error("an aborted stream looks complete")
			}
			if got.content != tc.wantContent {
				t.Errorf("content before the cut %q, want %q", got.content, tc.wantContent)
			}
		})
	}
}

func TestNonStreamAbort(t *testing.T) {
	srv := newServer(t, Options{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PathChatCompletions, strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("X-Mock-Abort-After", "0")
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d), want the connection cut", resp.StatusCode)
	}
}

// TestStreamPacing checks observed arrival times: chunks are spread by the
// chunk delay, not delivered at once. Only lower bounds are asserted, which
// a slow machine cannot break.
func TestStreamPacing(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		headers map[string]string
	}{
		{"options", Options{ChunkDelay: 20 * time.Millisecond}, nil},
		{"header overrides options", Options{ChunkDelay: time.Hour}, map[string]string{"X-Mock-Chunk-Delay": "20ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.opts)
			_, events, err := postStream(t, srv, fiveWords, tc.headers)
			if err != nil {
				t.Fatal(err)
			}
			var arrivals []time.Time
			for _, ev := range events {
				if strings.Contains(ev.Data, `"content":"`) && !strings.Contains(ev.Data, `"content":""`) {
					arrivals = append(arrivals, ev.Arrived)
				}
			}
			if len(arrivals) != 5 {
				t.Fatalf("%d content chunks, want 5", len(arrivals))
			}
			checkPaced(t, arrivals)
		})
	}
}

func TestLatencyAndTTFT(t *testing.T) {
	srv := newServer(t, Options{Latency: 40 * time.Millisecond, TTFT: 40 * time.Millisecond})
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PathChatCompletions, strings.NewReader(fiveWords))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	headers := time.Now()
	if d := headers.Sub(start); d < 40*time.Millisecond {
		t.Errorf("headers after %v, want >= latency 40ms", d)
	}
	events, err := ssetest.Read(resp.Body)
	if err != nil || len(events) == 0 {
		t.Fatalf("%d events, %v", len(events), err)
	}
	if d := events[0].Arrived.Sub(start); d < 80*time.Millisecond {
		t.Errorf("first event %v after the request, want >= latency + TTFT = 80ms", d)
	}
}

// TestCancellationStopsHandler checks that a client going away ends the
// handler promptly wherever it is waiting.
func TestCancellationStopsHandler(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		body     string
		readMore bool // read the first event before cancelling
	}{
		{"during latency", Options{Latency: time.Hour}, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, false},
		{"during TTFT", Options{TTFT: time.Hour}, fiveWords, false},
		{"between chunks", Options{ChunkDelay: time.Hour}, fiveWords, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := New(tc.opts)
			entered := make(chan struct{})
			exited := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				defer close(exited)
				h.ServeHTTP(w, r)
			}))
			defer srv.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+PathChatCompletions, strings.NewReader(tc.body))
			done := make(chan struct{})
			go func() {
				defer close(done)
				resp, err := srv.Client().Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				if tc.readMore {
					buf := make([]byte, 1)
					_, _ = resp.Body.Read(buf) // the role chunk was flushed
					cancel()
				}
				_, _ = io.Copy(io.Discard, resp.Body)
			}()
			<-entered
			if !tc.readMore {
				cancel()
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("handler still running 10s after the client went away")
			}
			<-done
		})
	}
}

func TestEchoHeaders(t *testing.T) {
	srv := newServer(t, Options{})
	resp, _ := post(t, srv, PathChatCompletions, `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"X-Request-Id": "abc-123", "Authorization": "Bearer sk-secret"})
	if got := resp.Header.Get("X-Mock-Request-Id"); got != "abc-123" {
		t.Errorf("X-Mock-Request-Id %q", got)
	}
	if got := resp.Header.Get("X-Mock-Received-Authorization"); got != "present" {
		t.Errorf("X-Mock-Received-Authorization %q", got)
	}
	if got := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(got, "req_") {
		t.Errorf("X-Request-Id %q, want req_…", got)
	}
	resp, _ = post(t, srv, PathChatCompletions, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil)
	if got := resp.Header.Get("X-Mock-Received-Authorization"); got != "absent" {
		t.Errorf("X-Mock-Received-Authorization %q without a key", got)
	}
	if got := resp.Header.Get("X-Mock-Request-Id"); got != "" {
		t.Errorf("X-Mock-Request-Id %q without an incoming id", got)
	}
}

// checkPaced asserts that 5 chunks sent 20ms apart arrived spread out: the
// first and last at least 60ms apart, and most gaps visible (a reader
// descheduled under load may see two chunks at once, never all of them).
func checkPaced(t *testing.T, arrivals []time.Time) {
	t.Helper()
	if span := arrivals[len(arrivals)-1].Sub(arrivals[0]); span < 60*time.Millisecond {
		t.Errorf("first to last chunk took %v, want >= 60ms (4 delays of 20ms)", span)
	}
	paced := 0
	for i := 1; i < len(arrivals); i++ {
		if arrivals[i].Sub(arrivals[i-1]) >= 10*time.Millisecond {
			paced++
		}
	}
	if paced < 2 {
		t.Errorf("only %d of %d gaps between chunks were >= 10ms: chunks were not paced", paced, len(arrivals)-1)
	}
}
