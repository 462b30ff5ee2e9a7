package llmcore

import (
	"context"
	"net/http"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first, and
// reports ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Abort cuts the client connection without completing the response (the
// client sees a truncated body or a reset). It never returns.
func Abort() {
	panic(http.ErrAbortHandler)
}

// Stream writes a server-sent event stream, one flushed write per event,
// and applies a Plan's pacing and abort. Not safe for concurrent use: one
// Stream belongs to one request goroutine.
type Stream struct {
	ctx  context.Context
	w    http.ResponseWriter
	rc   *http.ResponseController
	plan Plan
	// Buf is scratch space for building the next event; Send does not keep
	// it, so callers reuse it: s.Buf = build(s.Buf[:0]); s.Send(s.Buf).
	Buf     []byte
	content int // content chunks sent
}

// StartStream sends the status line and SSE headers and flushes them.
func StartStream(w http.ResponseWriter, r *http.Request, plan Plan) (*Stream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &Stream{ctx: r.Context(), w: w, rc: http.NewResponseController(w), plan: plan, Buf: make([]byte, 0, 512)}
	return s, s.flush()
}

// Send writes one complete event and flushes it.
func (s *Stream) Send(event []byte) error {
	if _, err := s.w.Write(event); err != nil {
		return err
	}
	return s.flush()
}

// WaitFirst waits the plan's TTFT; call it before the first event that
// carries the answer.
func (s *Stream) WaitFirst() error { return Sleep(s.ctx, s.plan.TTFT) }

// BeforeContent is called before each content chunk: it waits the chunk
// delay (from the second chunk on) and aborts the connection once the plan's
// AbortAfter chunks were sent.
func (s *Stream) BeforeContent() error {
	if s.plan.AbortAfter >= 0 && s.content >= s.plan.AbortAfter {
		Abort()
	}
	if s.content > 0 {
		if err := Sleep(s.ctx, s.plan.ChunkDelay); err != nil {
			return err
		}
	}
	return s.ctx.Err()
}

// SendContent sends a content chunk and counts it.
func (s *Stream) SendContent(event []byte) error {
	if err := s.Send(event); err != nil {
		return err
	}
	s.content++
	return nil
}

// BeforeClose is called before the closing events; with an abort planned
// the stream is cut here, so an aborted stream never looks complete.
func (s *Stream) BeforeClose() {
	if s.plan.AbortAfter >= 0 {
		Abort()
	}
}

func (s *Stream) flush() error {
	err := s.rc.Flush()
	if err == http.ErrNotSupported {
		return nil
	}
	return err
}
