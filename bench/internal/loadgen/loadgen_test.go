package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const chatBody = `{"model":"mock-gpt","messages":[{"role":"user","content":"hello bench"}]}`

func TestRunCountsEveryRequest(t *testing.T) {
	var served, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		b, _ := io.ReadAll(r.Body)
		if string(b) != chatBody || r.Method != http.MethodPost {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		Request:     Request{URL: srv.URL, Body: []byte(chatBody)},
		Concurrency: 4,
		Warmup:      50 * time.Millisecond,
		Duration:    200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalErrors() != 0 {
		t.Fatalf("errors: %v %v", res.ErrorCounts, res.ErrorSamples)
	}
	if res.Requests == 0 || res.WarmupRequests == 0 {
		t.Fatalf("requests %d, warm-up requests %d: want both > 0", res.Requests, res.WarmupRequests)
	}
	if got, want := int64(res.Requests+res.WarmupRequests), served.Load(); got != want {
		t.Errorf("client counted %d requests, server served %d", got, want)
	}
	if res.Latency.Count != res.Requests {
		t.Errorf("latency samples %d, requests %d", res.Latency.Count, res.Requests)
	}
	if res.BytesRead != int64(res.Requests*len(`{"ok":true}`)) {
		t.Errorf("bytes read %d for %d requests", res.BytesRead, res.Requests)
	}
	if res.Elapsed <= 0 || res.Throughput() <= 0 {
		t.Errorf("elapsed %v, throughput %v", res.Elapsed, res.Throughput())
	}
	if res.Latency.Min <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency summary out of order: %+v", res.Latency)
	}
	if res.TTFT.Count != 0 {
		t.Errorf("TTFT measured for a non-stream request: %+v", res.TTFT)
	}
	// Keep-alive: four workers need about four connections, not one per request.
	if c := conns.Load(); c > 8 {
		t.Errorf("%d connections opened for %d requests: keep-alive is not working", c, served.Load())
	}
}

func TestRunCountsStatusErrors(t *testing.T) {
	var n, failed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			failed.Add(1)
			http.Error(w, "upstream went away", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		Request:     Request{URL: srv.URL, Body: []byte(chatBody)},
		Concurrency: 2,
		Warmup:      20 * time.Millisecond,
		Duration:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(res.TotalErrors()), failed.Load(); got != want || got == 0 {
		t.Errorf("counted %d errors, server failed %d (want equal and > 0)", got, want)
	}
	if got, want := int64(res.Requests+res.WarmupRequests), n.Load()-failed.Load(); got != want {
		t.Errorf("counted %d successes, server succeeded %d", got, want)
	}
	if res.ErrorCounts["status 502"] != res.TotalErrors() {
		t.Errorf("error classes %v: want all as status 502", res.ErrorCounts)
	}
	if len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], "upstream went away") {
		t.Errorf("error samples %q: want the body of the 502", res.ErrorSamples)
	}
	if res.Latency.Count != res.Requests {
		t.Errorf("latency samples %d, successful requests %d: failures must not be sampled", res.Latency.Count, res.Requests)
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	res, err := Run(context.Background(), Config{
		Request:     Request{URL: url},
		Concurrency: 2,
		Duration:    50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors == 0 {
		t.Errorf("requests %d, errors %d: want 0 and > 0", res.Requests, res.Errors)
	}
	if res.ErrorCounts["transport"] != res.TotalErrors() {
		t.Errorf("error classes %v: want all transport", res.ErrorCounts)
	}
}

// sseHandler writes a role-only event at once, waits delay, then writes
// content events and, if done, the [DONE] terminator.
func sseHandler(delay time.Duration, content, done bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`+"\n\n")
		f.Flush()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if content {
			for _, word := range []string{"Hello", " bench"} {
				fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", word)
				f.Flush()
			}
		}
		if done {
			io.WriteString(w, "data: [DONE]\n\n")
		}
	}
}

func TestRunMeasuresTimeToFirstContent(t *testing.T) {
	const delay = 30 * time.Millisecond
	srv := httptest.NewServer(sseHandler(delay, true, true))
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		Request:     Request{URL: srv.URL, Body: []byte(chatBody), Stream: true},
		Concurrency: 1,
		Duration:    200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalErrors() != 0 || res.Requests == 0 {
		t.Fatalf("requests %d, errors %v %v", res.Requests, res.ErrorCounts, res.ErrorSamples)
	}
	if res.TTFT.Count != res.Requests {
		t.Errorf("TTFT samples %d, requests %d", res.TTFT.Count, res.Requests)
	}
	if res.TTFT.Min < delay {
		t.Errorf("TTFT min %v: the first content event was delayed %v, so it cannot arrive sooner (role-only event counted?)", res.TTFT.Min, delay)
	}
	if res.Latency.Min < res.TTFT.Min {
		t.Errorf("total latency min %v below TTFT min %v", res.Latency.Min, res.TTFT.Min)
	}
}

func TestRunFailsBrokenStreams(t *testing.T) {
	cases := []struct {
		name      string
		content   bool
		done      bool
		wantClass string
	}{
		{"no content", false, true, "stream without content"},
		{"no done", true, false, "stream without data: [DONE]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(sseHandler(0, tc.content, tc.done))
			defer srv.Close()
			res, err := Run(context.Background(), Config{
				Request:     Request{URL: srv.URL, Body: []byte(chatBody), Stream: true},
				Concurrency: 1,
				Duration:    50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 0 || res.ErrorCounts[tc.wantClass] == 0 || res.ErrorCounts[tc.wantClass] != res.TotalErrors() {
				t.Errorf("requests %d, errors %v: want every request failed as %q", res.Requests, res.ErrorCounts, tc.wantClass)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()             // the run is under way: stop it
		<-r.Context().Done() // and hang until the client gives up
	}))
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{Request: Request{URL: srv.URL}, Concurrency: 2, Duration: time.Hour})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"zero concurrency", Config{Request: Request{URL: "http://127.0.0.1:1"}, Duration: time.Second}},
		{"zero duration", Config{Request: Request{URL: "http://127.0.0.1:1"}, Concurrency: 1}},
		{"negative warm-up", Config{Request: Request{URL: "http://127.0.0.1:1"}, Concurrency: 1, Duration: time.Second, Warmup: -time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); err == nil {
				t.Error("Run accepted a bad config")
			}
		})
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(sseHandler(5*time.Millisecond, true, true))
	defer srv.Close()
	obs, err := Probe(context.Background(), Request{URL: srv.URL, Body: []byte(chatBody), Stream: true}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Status != http.StatusOK || obs.TTFT < 5*time.Millisecond || obs.Latency < obs.TTFT || obs.Bytes == 0 {
		t.Errorf("probe observation %+v", obs)
	}
}
