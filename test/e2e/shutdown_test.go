package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/standin/llm"
	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

// upstreamLog wraps a handler and records, by X-Request-Id, when each
// request arrived and when its handler returned.
type upstreamLog struct {
	next     http.Handler
	inflight atomic.Int64

	mu    sync.Mutex
	start map[string]time.Time
	end   map[string]time.Time
}

func newUpstreamLog(next http.Handler) *upstreamLog {
	return &upstreamLog{next: next, start: map[string]time.Time{}, end: map[string]time.Time{}}
}

func (l *upstreamLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	l.mu.Lock()
	l.start[id] = time.Now()
	l.mu.Unlock()
	l.inflight.Add(1)
	defer func() {
		l.inflight.Add(-1)
		l.mu.Lock()
		l.end[id] = time.Now()
		l.mu.Unlock()
	}()
	l.next.ServeHTTP(w, r)
}

func (l *upstreamLog) times(id string) (start, end time.Time, seen bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start, seen = l.start[id]
	return start, l.end[id], seen
}

// loadResult is one request made during the shutdown test.
type loadResult struct {
	id      string
	stream  bool
	started time.Time
	err     error // transport error or incomplete body
	status  int   // 0 when no response arrived
}

// TestGracefulShutdownUnderLoad shuts the gateway down while clients keep
// sending fast requests and slow streams: every request the gateway had
// taken on completes, Shutdown returns nil and the listener is closed.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	fastLog := newUpstreamLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.Header.Get("X-Request-Id"))
	}))
	fast := httptest.NewServer(fastLog)
	t.Cleanup(fast.Close)
	llmLog := newUpstreamLog(llm.New(llm.Options{}))
	slow := httptest.NewServer(llmLog)
	t.Cleanup(slow.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("fast", []string{fast.Listener.Addr().String()}),
		clusterDoc("llm", []string{slow.Listener.Addr().String()}),
		routeDoc("fast", "match: {path: {prefix: /fast}}", "cluster: fast"),
		routeDoc("llm", "match: {path: {prefix: /v1/}}", "cluster: llm"),
	}})
	addr := g.addr("main")

	var (
		stop       atomic.Bool
		shutdownAt atomic.Pointer[time.Time]
		mu         sync.Mutex
		results    []loadResult
		okFast     atomic.Int64
		okStreams  atomic.Int64
		wg         sync.WaitGroup
	)
	record := func(r loadResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	const clients, streamers = 8, 2
	for c := range clients {
		stream := c < streamers
		wg.Go(func() {
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for i := 0; !stop.Load(); i++ {
				r := loadResult{id: fmt.Sprintf("c%d-%d", c, i), stream: stream, started: time.Now()}
				var req *http.Request
				var err error
				if stream {
					req, err = newChatRequest("http://"+addr+"/v1/chat/completions", true, "X-Mock-Chunk-Delay", "100ms")
				} else {
					req, err = http.NewRequest(http.MethodGet, "http://"+addr+"/fast", nil)
				}
				if err != nil {
					r.err = err
					record(r)
					return
				}
				req.Header.Set("X-Request-Id", r.id)
				resp, err := client.Do(req)
				if err != nil {
					r.err = err
					record(r)
					if shutdownAt.Load() != nil {
						return // the listener is closing
					}
					continue
				}
				r.status = resp.StatusCode
				r.err = readComplete(resp, r)
				resp.Body.Close()
				if r.err == nil && r.status == http.StatusOK {
					if stream {
						okStreams.Add(1)
					} else {
						okFast.Add(1)
					}
				}
				record(r)
			}
		})
	}

	// Let the load build up, then shut down while a stream is in flight.
	eventually(t, "load to build up (100 fast requests and 2 streams done)", func() bool {
		return okFast.Load() >= 100 && okStreams.Load() >= 2
	})
	eventually(t, "a stream in flight at the upstream", func() bool { return llmLog.inflight.Load() > 0 })
	now := time.Now()
	shutdownAt.Store(&now)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.app.Shutdown(ctx)
	took := time.Since(now)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Errorf("Shutdown returned %v after %s, want nil", err, took)
	}

	// The listener is closed.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the listener at %s still accepts connections after Shutdown", addr)
	}

	var startedBefore, failedUnseen, drainedStreams int
	for _, r := range results {
		log := fastLog
		if r.stream {
			log = llmLog
		}
		upStart, upEnd, seen := log.times(r.id)
		if r.started.Before(now) {
			startedBefore++
		}
		switch {
		case seen && (r.err != nil || r.status != http.StatusOK):
			// The gateway had taken the request on: it must complete.
			t.Errorf("request %s (stream %v, started %s before Shutdown, at the upstream %s before) failed: status %d, %v",
				r.id, r.stream, now.Sub(r.started), now.Sub(upStart), r.status, r.err)
		case r.status != 0 && r.status != http.StatusOK:
			t.Errorf("request %s got status %d; a draining gateway must not answer with an error", r.id, r.status)
		case r.status != 0 && r.err != nil:
			t.Errorf("request %s got a response that broke off: %v", r.id, r.err)
		case r.err != nil:
			failedUnseen++ // never reached the gateway's handler: refused, or an idle connection closed under it
		}
		if r.stream && seen && upStart.Before(now) && upEnd.After(now) && r.err == nil {
			drainedStreams++
		}
	}
	t.Logf("%d requests, %d started before Shutdown; %d failed at the transport without reaching the gateway; %d streams drained; Shutdown took %s",
		len(results), startedBefore, failedUnseen, drainedStreams, took)
	if drainedStreams == 0 {
		t.Errorf("no stream was in flight across Shutdown, so draining was not exercised")
	}
	for _, a := range g.accessEntries() {
		if a.Status != http.StatusOK || a.ResponseDetails != "via_upstream" {
			t.Errorf("access log: request %s: status %d details %q, want 200 via_upstream", a.RequestID, a.Status, a.ResponseDetails)
		}
	}
}

// TestShutdownDrainsAndReportsNotReady holds one request at the upstream,
// shuts down, and checks that readiness turns 503 while the request
// drains, that the request then completes, and that Shutdown returns nil.
func TestShutdownDrainsAndReportsNotReady(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "finished")
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("up", "cluster: up"),
	}})
	if resp, body := g.admin("/readyz", false); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz before shutdown: %d %s", resp.StatusCode, body)
	}

	type result struct {
		status int
		body   string
		err    error
	}
	held := make(chan result, 1)
	go func() {
		resp, err := g.client.Get(g.url("/held"))
		if err != nil {
			held <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- result{resp.StatusCode, string(b), err}
	}()
	receive(t, "the request to reach the upstream", arrived)

	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		shutdownErr <- g.app.Shutdown(ctx)
	}()
	eventually(t, "GET /readyz to answer 503 while draining", func() bool {
		resp, err := http.Get("http://" + g.app.AdminAddr() + "/readyz")
		if err != nil {
			t.Fatalf("admin unreachable while a request is still draining: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)
	if r := receive(t, "the held request to finish", held); r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Errorf("held request: %d %q %v; want 200 finished", r.status, r.body, r.err)
	}
	if err := receive(t, "Shutdown to return", shutdownErr); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// readComplete reads a whole response and reports whether it is complete:
// the echo for a fast request, an event stream ending in [DONE] for a
// stream.
func readComplete(resp *http.Response, r loadResult) error {
	if !r.stream {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var echo struct{ ID string }
		if err := json.Unmarshal(body, &echo); err != nil || echo.ID != r.id {
			return fmt.Errorf("bad body %q", body)
		}
		return nil
	}
	events, err := ssetest.Read(resp.Body)
	if err != nil {
		return fmt.Errorf("stream broke after %d events: %w", len(events), err)
	}
	if len(events) == 0 || events[len(events)-1].Data != "[DONE]" {
		var last string
		if len(events) > 0 {
			last = events[len(events)-1].Data
		}
		return fmt.Errorf("stream of %d events ended without [DONE] (last %q)", len(events), strings.TrimSpace(last))
	}
	return nil
}
