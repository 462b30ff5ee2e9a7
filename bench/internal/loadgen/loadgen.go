// Package loadgen is the closed-loop HTTP load generator of the benchmark
// harness.
//
// A run has a fixed number of workers. Each worker issues one request at a
// time over its keep-alive connection, back to back, first for a warm-up and
// then for a fixed measurement window. Every latency of the window is kept,
// so percentiles are exact; for server-sent event streams the time to the
// first event carrying content is kept as well. Failed requests (transport
// errors, non-2xx answers, streams without content or without [DONE]) are
// counted, never folded into the latencies.
//
// The package measures and counts; it does not judge. Deciding whether a
// result is good is the harness's business.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Request is the request every worker repeats.
type Request struct {
	// Method defaults to POST when Body is set, GET otherwise.
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Stream marks the response as a server-sent event stream: the time
	// to the first content event is measured and the stream must carry
	// content and end with "data: [DONE]".
	Stream bool
}

func (r Request) method() string {
	switch {
	case r.Method != "":
		return r.Method
	case r.Body != nil:
		return http.MethodPost
	default:
		return http.MethodGet
	}
}

// Config is one load run.
type Config struct {
	Request Request
	// Concurrency is the number of workers, each with one request in
	// flight at a time. Required, at least 1.
	Concurrency int
	// Warmup is run before the measurement window; its requests are
	// counted apart and their latencies dropped.
	Warmup time.Duration
	// Duration is the measurement window. Required, positive. Requests
	// started inside it are measured; none is started after it.
	Duration time.Duration
	// Timeout bounds one request, body included. Default 30s.
	Timeout time.Duration
}

// Result is what a run measured. Requests and Errors count only the
// measurement window.
type Result struct {
	Concurrency int
	// Elapsed runs from the first measured request's start to the last
	// measured request's end.
	Elapsed time.Duration
	// Requests is the number of measured requests that succeeded.
	Requests int
	// Errors is the number of measured requests that failed.
	Errors int
	// WarmupRequests and WarmupErrors count the warm-up the same way.
	WarmupRequests int
	WarmupErrors   int
	// ErrorCounts counts failures (warm-up included) by class, such as
	// "status 502", "transport", "read", "stream without content".
	ErrorCounts map[string]int
	// ErrorSamples holds up to maxErrorSamples distinct error messages.
	ErrorSamples []string
	// BytesRead is the number of response body bytes of measured requests.
	BytesRead int64
	// Latency is the time from sending a request to having read its whole
	// response, for the measured successful requests.
	Latency Summary
	// TTFT is the time from sending a request to reading the first event
	// that carries content; streams only.
	TTFT Summary
}

// Throughput is the number of successful measured requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// TotalErrors counts every failed request, warm-up included.
func (r *Result) TotalErrors() int { return r.Errors + r.WarmupErrors }

const (
	maxErrorSamples = 5
	defaultTimeout  = 30 * time.Second
)

// NewClient returns an HTTP/1.1 client for concurrency workers: keep-alive
// connections, at least one idle connection kept per worker, no
// compression, no proxy from the environment.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no global cap; the per-host cap below rules
			MaxIdleConnsPerHost: max(concurrency, 1) * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Run applies the load described by cfg and returns what it measured.
// It returns ctx's error if ctx ends before the run does.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("loadgen: concurrency %d: must be at least 1", cfg.Concurrency)
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: duration %v: must be positive", cfg.Duration)
	}
	if cfg.Warmup < 0 {
		return nil, fmt.Errorf("loadgen: warm-up %v: must not be negative", cfg.Warmup)
	}
	client := NewClient(cfg.Concurrency, cfg.Timeout)
	defer client.CloseIdleConnections()

	begin := time.Now()
	measureFrom := begin.Add(cfg.Warmup)
	stopAt := measureFrom.Add(cfg.Duration)

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{client: client, req: cfg.Request, header: cfg.Request.Header.Clone()}
		workers[i] = w
		wg.Go(func() { w.run(ctx, measureFrom, stopAt) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return merge(cfg.Concurrency, workers), nil
}

// worker is one closed loop. It is owned by one goroutine.
type worker struct {
	client *http.Client
	req    Request
	header http.Header

	first, last  time.Time
	latencies    []time.Duration
	ttfts        []time.Duration
	requests     int
	errs         int
	warmReqs     int
	warmErrs     int
	bytesRead    int64
	errorCounts  map[string]int
	errorSamples []string
}

func (w *worker) run(ctx context.Context, measureFrom, stopAt time.Time) {
	for ctx.Err() == nil {
		start := time.Now()
		if !start.Before(stopAt) {
			return
		}
		obs, err := do(ctx, w.client, w.req, w.header)
		end := time.Now()
		if ctx.Err() != nil {
			return // the run was cancelled; this request proves nothing
		}
		measured := !start.Before(measureFrom)
		if err != nil {
			w.recordError(err)
			if measured {
				w.errs++
			} else {
				w.warmErrs++
			}
			continue
		}
		if !measured {
			w.warmReqs++
			continue
		}
		if w.first.IsZero() {
			w.first = start
		}
		w.last = end
		w.requests++
		w.bytesRead += obs.Bytes
		w.latencies = append(w.latencies, obs.Latency)
		if w.req.Stream {
			w.ttfts = append(w.ttfts, obs.TTFT)
		}
	}
}

func (w *worker) recordError(err error) {
	if w.errorCounts == nil {
		w.errorCounts = map[string]int{}
	}
	w.errorCounts[errorClass(err)]++
	if len(w.errorSamples) < maxErrorSamples {
		w.errorSamples = append(w.errorSamples, err.Error())
	}
}

func merge(concurrency int, workers []*worker) *Result {
	r := &Result{Concurrency: concurrency, ErrorCounts: map[string]int{}}
	var first, last time.Time
	var lat, ttft []time.Duration
	seen := map[string]bool{}
	for _, w := range workers {
		r.Requests += w.requests
		r.Errors += w.errs
		r.WarmupRequests += w.warmReqs
		r.WarmupErrors += w.warmErrs
		r.BytesRead += w.bytesRead
		lat = append(lat, w.latencies...)
		ttft = append(ttft, w.ttfts...)
		for k, v := range w.errorCounts {
			r.ErrorCounts[k] += v
		}
		for _, s := range w.errorSamples {
			if !seen[s] && len(r.ErrorSamples) < maxErrorSamples {
				seen[s] = true
				r.ErrorSamples = append(r.ErrorSamples, s)
			}
		}
		if !w.first.IsZero() && (first.IsZero() || w.first.Before(first)) {
			first = w.first
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	sort.Strings(r.ErrorSamples)
	if !first.IsZero() {
		r.Elapsed = last.Sub(first)
	}
	r.Latency = Summarize(lat)
	r.TTFT = Summarize(ttft)
	return r
}

// Observation is one request's outcome.
type Observation struct {
	Status  int
	Latency time.Duration
	// TTFT is set for streams: the time to the first content event.
	TTFT  time.Duration
	Bytes int64
}

// Probe sends req once and checks it the way a run would, so a harness can
// tell "target misconfigured" from "target slow" before loading it.
func Probe(ctx context.Context, req Request, timeout time.Duration) (Observation, error) {
	client := NewClient(1, timeout)
	defer client.CloseIdleConnections()
	return do(ctx, client, req, req.Header.Clone())
}

// Failure classes; see Result.ErrorCounts.
var (
	errNoContent = errors.New("stream without content")
	errNoDone    = errors.New("stream without data: [DONE]")
)

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("status %d: %q", e.code, e.body)
}

type transportError struct{ err error }

func (e *transportError) Error() string { return "transport: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

type readError struct{ err error }

func (e *readError) Error() string { return "read body: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func errorClass(err error) string {
	var se *statusError
	var te *transportError
	var re *readError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.code)
	case errors.As(err, &te):
		return "transport"
	case errors.As(err, &re):
		return "read"
	case errors.Is(err, errNoContent):
		return errNoContent.Error()
	case errors.Is(err, errNoDone):
		return errNoDone.Error()
	default:
		return "other"
	}
}

// do sends one request and reads its whole response.
func do(ctx context.Context, client *http.Client, r Request, header http.Header) (Observation, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method(), r.URL, body)
	if err != nil {
		return Observation{}, err
	}
	if header != nil {
		req.Header = header
	}
	if r.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return Observation{}, &transportError{err}
	}
	defer resp.Body.Close()
	obs := Observation{Status: resp.StatusCode}
	if resp.StatusCode/100 != 2 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		_, _ = io.Copy(io.Discard, resp.Body)
		return obs, &statusError{code: resp.StatusCode, body: string(snippet)}
	}
	if r.Stream {
		obs.TTFT, obs.Bytes, err = readStream(resp.Body, start)
	} else {
		obs.Bytes, err = io.Copy(io.Discard, resp.Body)
		if err != nil {
			err = &readError{err}
		}
	}
	obs.Latency = time.Since(start)
	return obs, err
}
