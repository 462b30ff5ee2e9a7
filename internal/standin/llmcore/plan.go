package llmcore

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers that steer one request. Durations use Go syntax ("150ms").
const (
	HeaderStatus     = "X-Mock-Status"      // answer this HTTP status (400-599) in the API's error shape
	HeaderAbortAfter = "X-Mock-Abort-After" // cut the connection after N content chunks
	HeaderLatency    = "X-Mock-Latency"     // overrides Options.Latency
	HeaderTTFT       = "X-Mock-TTFT"        // overrides Options.TTFT
	HeaderChunkDelay = "X-Mock-Chunk-Delay" // overrides Options.ChunkDelay
	HeaderChunkWords = "X-Mock-Chunk-Words" // overrides Options.ChunkWords
	HeaderReplyWords = "X-Mock-Reply-Words" // overrides Options.ReplyWords
	HeaderRetryAfter = "X-Mock-Retry-After" // Retry-After seconds sent with an injected 429/503 (default 1)
)

// Response headers the stand-ins add to every answer.
const (
	// HeaderEchoRequestID carries the incoming X-Request-Id, when there is one.
	HeaderEchoRequestID = "X-Mock-Request-Id"
	// HeaderEchoAuthorization is "present" when the request carried
	// Authorization or X-Api-Key, else "absent". The key itself is never echoed.
	HeaderEchoAuthorization = "X-Mock-Received-Authorization"
)

// StatusModelPrefix names models that always fail: a request for model
// "mock-status-503" is answered 503, as if it carried X-Mock-Status: 503.
// Useful where headers cannot differ per upstream (fallback tests).
const StatusModelPrefix = "mock-status-"

// Plan is the resolved behaviour of one request: Options overridden by the
// request's x-mock-* headers.
type Plan struct {
	Latency    time.Duration
	TTFT       time.Duration
	ChunkDelay time.Duration
	ChunkWords int
	ReplyWords int
	// Status, when non-zero, is the error status to answer.
	Status int
	// RetryAfter is the Retry-After value (seconds) sent with an injected
	// 429 or 503.
	RetryAfter int
	// AbortAfter, when >= 0, cuts a stream after that many content chunks
	// (before the closing events if the answer has fewer), and a
	// non-streaming request before any response.
	AbortAfter int
}

// NewPlan resolves the plan for a request. A malformed header is an error
// whose text names the header; the caller answers it 400.
func NewPlan(o Options, h http.Header) (Plan, error) {
	p := Plan{
		Latency:    o.Latency,
		TTFT:       o.TTFT,
		ChunkDelay: o.ChunkDelay,
		ChunkWords: max(o.ChunkWords, 1),
		ReplyWords: max(o.ReplyWords, 0),
		RetryAfter: 1,
		AbortAfter: -1,
	}
	var err error
	if p.Latency, err = headerDuration(h, HeaderLatency, p.Latency); err != nil {
		return p, err
	}
	if p.TTFT, err = headerDuration(h, HeaderTTFT, p.TTFT); err != nil {
		return p, err
	}
	if p.ChunkDelay, err = headerDuration(h, HeaderChunkDelay, p.ChunkDelay); err != nil {
		return p, err
	}
	if p.ChunkWords, err = headerInt(h, HeaderChunkWords, p.ChunkWords, 1, 1<<20); err != nil {
		return p, err
	}
	if p.ReplyWords, err = headerInt(h, HeaderReplyWords, p.ReplyWords, 0, 1<<20); err != nil {
		return p, err
	}
	if p.Status, err = headerInt(h, HeaderStatus, 0, 400, 599); err != nil {
		return p, err
	}
	if p.RetryAfter, err = headerInt(h, HeaderRetryAfter, p.RetryAfter, 0, 86400); err != nil {
		return p, err
	}
	if p.AbortAfter, err = headerInt(h, HeaderAbortAfter, p.AbortAfter, 0, 1<<30); err != nil {
		return p, err
	}
	return p, nil
}

// StatusForModel returns the status a "mock-status-NNN" model asks for, or 0.
func StatusForModel(model string) int {
	rest, ok := strings.CutPrefix(model, StatusModelPrefix)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 400 || n > 599 {
		return 0
	}
	return n
}

// EchoHeaders sets the response headers every stand-in answer carries.
func EchoHeaders(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-Id"); id != "" {
		w.Header().Set(HeaderEchoRequestID, id)
	}
	auth := authAbsent
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
		auth = authPresent
	}
	// Shared, never-modified value slices save an allocation per request.
	w.Header()[HeaderEchoAuthorization] = auth
}

var (
	authPresent = []string{"present"}
	authAbsent  = []string{"absent"}
)

func headerDuration(h http.Header, name string, def time.Duration) (time.Duration, error) {
	v := h.Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return def, fmt.Errorf("header %s: %q is not a non-negative Go duration (for example 150ms)", name, v)
	}
	return d, nil
}

func headerInt(h http.Header, name string, def, lo, hi int) (int, error) {
	v := h.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return def, fmt.Errorf("header %s: %q is not an integer in [%d, %d]", name, v, lo, hi)
	}
	return n, nil
}
