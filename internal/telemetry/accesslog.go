package telemetry

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Access log destinations understood by [OpenAccessLog] besides a file path.
const (
	AccessLogStdout = "stdout"
	AccessLogStderr = "stderr"
	AccessLogOff    = "off"
)

// maxPooledLine bounds the buffers kept for reuse: a rare huge line (a big
// ai_log) must not pin its buffer for the life of the process.
const maxPooledLine = 64 << 10

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// AccessLog writes one JSON line per request. The fields, in order: time
// (RFC 3339 with nanoseconds, UTC), listener, method, authority, path,
// protocol, client_addr, user_agent, status, route, cluster, upstream_host,
// duration_ms, upstream_duration_ms, ttfb_ms, bytes_in, bytes_out,
// request_id, response_details, ai_log (only when set), trace_id.
//
// An AccessLog is safe for concurrent use. Each line reaches the underlying
// writer in a single Write call made under a mutex, so lines from concurrent
// requests never interleave, whatever the destination (file, pipe, terminal).
// A nil *AccessLog, or one opened with "off", discards records.
type AccessLog struct {
	mu     sync.Mutex
	w      io.Writer // nil: discard
	closer io.Closer // the file we opened, if any
	closed bool

	writeErrors atomic.Uint64
}

// OpenAccessLog opens the access log destination named by path: "stdout"
// (also the meaning of ""), "stderr", "off", or a file path, which is created
// if needed (mode 0644) and appended to.
func OpenAccessLog(path string) (*AccessLog, error) {
	switch path {
	case "", AccessLogStdout:
		return &AccessLog{w: os.Stdout}, nil
	case AccessLogStderr:
		return &AccessLog{w: os.Stderr}, nil
	case AccessLogOff:
		return &AccessLog{}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return &AccessLog{w: f, closer: f}, nil
}

// NewAccessLogWriter returns an AccessLog writing to w, which it does not
// close. Tests and benchmarks use it.
func NewAccessLogWriter(w io.Writer) *AccessLog {
	return &AccessLog{w: w}
}

// Write logs r as one JSON line. A failed write is counted (see
// [AccessLog.WriteErrors]) and otherwise ignored: the access log must never
// fail a request. Writes after [AccessLog.Close] are discarded.
func (a *AccessLog) Write(r *Record) {
	if a == nil || a.w == nil {
		return
	}
	bp := lineBufs.Get().(*[]byte)
	line := append(r.AppendJSON((*bp)[:0]), '\n')

	a.mu.Lock()
	if !a.closed {
		if _, err := a.w.Write(line); err != nil {
			a.writeErrors.Add(1)
		}
	}
	a.mu.Unlock()

	if cap(line) <= maxPooledLine {
		*bp = line
		lineBufs.Put(bp)
	}
}

// WriteErrors returns how many lines failed to be written so far, for the
// gateway to report (a full disk, a closed pipe).
func (a *AccessLog) WriteErrors() uint64 {
	if a == nil {
		return 0
	}
	return a.writeErrors.Load()
}

// Close stops the log and closes the file [OpenAccessLog] opened, if any;
// stdout, stderr and writers given to [NewAccessLogWriter] stay open. It is
// safe on a nil AccessLog and idempotent.
func (a *AccessLog) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.closer != nil {
		if err := a.closer.Close(); err != nil {
			return fmt.Errorf("access log: %w", err)
		}
	}
	return nil
}
