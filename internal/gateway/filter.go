package gateway

// HeadersAction is what a filter's header callback asks the driver to do.
// The values follow Proxy-Wasm ABI 0.2.100 (spec/host.md §2.6).
type HeadersAction int

const (
	// HeadersContinue passes the headers to the next filter.
	HeadersContinue HeadersAction = iota
	// HeadersStopIteration holds the headers at this filter but keeps
	// feeding it body chunks; the headers move on when the filter
	// continues from a body callback or calls Continue.
	HeadersStopIteration
	// HeadersStopAllBuffer stops headers and body at this filter; the driver
	// buffers the body up to the stream's buffer limit (over it: 413 on the
	// request path, 500 on the response path) until Continue.
	HeadersStopAllBuffer
	// HeadersStopAllWatermark is HeadersStopAllBuffer with back-pressure on
	// the source instead of a hard limit.
	HeadersStopAllWatermark
)

// DataAction is what a filter's body callback asks the driver to do.
type DataAction int

const (
	// DataContinue releases the current buffer (and held headers) onwards.
	DataContinue DataAction = iota
	// DataStopAndBuffer keeps the data: the next chunk is appended and the
	// filter is called again with the whole accumulated body.
	DataStopAndBuffer
	// DataStopAndWatermark is DataStopAndBuffer with back-pressure instead
	// of a hard limit.
	DataStopAndWatermark
	// DataStopNoBuffer drops the current chunk (the filter consumed it).
	DataStopNoBuffer
)

// TrailersAction is what a filter's trailer callback asks.
type TrailersAction int

const (
	// TrailersContinue passes the trailers on.
	TrailersContinue TrailersAction = iota
	// TrailersStop holds them until Continue.
	TrailersStop
)

// Direction names one half of a stream.
type Direction int

const (
	// Request is the client → upstream half.
	Request Direction = iota
	// Response is the upstream → client half.
	Response
)

func (d Direction) String() string {
	if d == Request {
		return "request"
	}
	return "response"
}

// Filter processes one stream. The driver calls every method from the
// stream's goroutine, one call at a time. A filter must not block: work that
// waits (callouts) returns a stop action and resumes later through
// FilterHandle.Post and FilterHandle.Continue.
//
// Response callbacks and OnLog/OnDestroy: the driver calls response
// callbacks only on filters whose OnRequestHeaders ran; it calls OnLog and
// then OnDestroy on every filter of the chain, in chain order, once.
type Filter interface {
	OnRequestHeaders(h *Headers, endOfStream bool) HeadersAction
	OnRequestBody(body *Buffer, endOfStream bool) DataAction
	OnRequestTrailers(t *Headers) TrailersAction
	OnResponseHeaders(h *Headers, endOfStream bool) HeadersAction
	OnResponseBody(body *Buffer, endOfStream bool) DataAction
	OnResponseTrailers(t *Headers) TrailersAction
	// OnLog runs at the end of the stream, before the access log is written.
	OnLog()
	// OnDestroy runs after OnLog; the filter must not use its handle after it.
	OnDestroy()
}

// FilterFactory makes the filter for one stream. The handle stays valid
// until OnDestroy returns.
type FilterFactory interface {
	// Name identifies the filter in logs, details and metrics.
	Name() string
	NewFilter(h *FilterHandle) Filter
}

// ChainProvider returns the filter chain, in request order, for a stream.
// It is called once per request and must be fast.
type ChainProvider func(s *Stream) []FilterFactory

// Buffer is a body chunk or accumulated body handed to a filter. The filter
// may read it, replace it, append to it or drain it; what is left when the
// filter continues goes onwards.
type Buffer struct {
	b []byte
}

// Bytes returns the contents. The slice is valid until the buffer changes.
func (b *Buffer) Bytes() []byte { return b.b }

// Len is the size in bytes.
func (b *Buffer) Len() int { return len(b.b) }

// Set replaces the contents with a copy of p.
func (b *Buffer) Set(p []byte) { b.b = append(b.b[:0], p...) }

// Append adds p at the end.
func (b *Buffer) Append(p []byte) { b.b = append(b.b, p...) }

// Prepend adds p at the start.
func (b *Buffer) Prepend(p []byte) {
	b.b = append(append(make([]byte, 0, len(p)+len(b.b)), p...), b.b...)
}

// Replace replaces [start, start+length) with p, clamping to the buffer.
func (b *Buffer) Replace(start, length int, p []byte) {
	if start < 0 {
		start = 0
	}
	if start > len(b.b) {
		start = len(b.b)
	}
	end := start + length
	if length < 0 || end > len(b.b) {
		end = len(b.b)
	}
	out := make([]byte, 0, len(b.b)-(end-start)+len(p))
	out = append(out, b.b[:start]...)
	out = append(out, p...)
	out = append(out, b.b[end:]...)
	b.b = out
}

// take returns the contents and empties the buffer.
func (b *Buffer) take() []byte {
	p := b.b
	b.b = nil
	return p
}
