package gateway

import "log/slog"

// FilterHandle is a filter's view of its stream: state, properties and the
// controls that advance the stream. Control calls (Continue, SendLocalReply,
// InjectData, Reset) are deferred: they take effect after the filter's
// current callback (or the posted function) returns, as Envoy's "after VM
// call actions" do.
//
// Methods must be called from the stream's goroutine, i.e. from a filter
// callback or a function run through Post. Post itself is safe from any
// goroutine.
type FilterHandle struct {
	d   *driver
	idx int
}

// Stream is the stream this filter belongs to.
func (h *FilterHandle) Stream() *Stream { return h.d.s }

// Index is the filter's position in the chain.
func (h *FilterHandle) Index() int { return h.idx }

// Logger logs with the stream's request id and the filter's name.
func (h *FilterHandle) Logger() *slog.Logger {
	return h.d.logger.With("request_id", h.d.s.id, "filter", h.d.slots[h.idx].factory.Name())
}

// Post runs fn on the stream's goroutine. It returns false when the stream
// has ended and fn will not run.
func (h *FilterHandle) Post(fn func()) bool { return h.d.post(fn) }

// Expect announces a Post to come (an asynchronous call was started for
// the stream); Arrived, called once for each Expect when the post ran or
// will never come, withdraws it. While a post is announced the driver
// keeps its goroutine free for it: it never waits for the upstream on that
// goroutine (an optimisation it makes for streams nothing else waits on).
// An Expect never withdrawn only costs the stream that optimisation.
func (h *FilterHandle) Expect() { h.d.expected.Add(1) }

// Arrived withdraws one Expect.
func (h *FilterHandle) Arrived() { h.d.expected.Add(-1) }

// Continue resumes the direction this filter stopped (Proxy-Wasm
// continue_stream). A no-op when the filter holds nothing in that direction.
func (h *FilterHandle) Continue(dir Direction) {
	h.d.defer_(func() { h.d.resume(dir, h.idx) })
}

// SendLocalReply answers the client without (further) upstream traffic. The
// reply runs through the response callbacks of the filters that saw the
// request. It is refused (false) when this filter already sent one.
func (h *FilterHandle) SendLocalReply(status int, body []byte, headers []HeaderField, details string) bool {
	slot := &h.d.slots[h.idx]
	if slot.replied {
		return false
	}
	slot.replied = true
	h.d.requestLocalReply(localReply{status: status, body: body, headers: headers, details: details, from: h.idx})
	return true
}

// InjectData feeds data into the chain right after this filter, in dir.
func (h *FilterHandle) InjectData(dir Direction, data []byte, endOfStream bool) {
	data = append([]byte(nil), data...)
	h.d.defer_(func() { h.d.inject(dir, h.idx, data, endOfStream) })
}

// Reset aborts the stream (Proxy-Wasm close_stream / reset). No filter
// sees the stream's headers or data after the current callback returns.
func (h *FilterHandle) Reset() {
	h.d.requestAbort("filter_reset")
}

// AttachBody releases headers this filter holds in dir together with data
// as the whole body (Higress's inject_encoded_data_to_filter_chain_on_header:
// a header-only response gains a body).
func (h *FilterHandle) AttachBody(dir Direction, data []byte) {
	data = append([]byte(nil), data...)
	h.d.defer_(func() { h.d.attachBody(dir, h.idx, data) })
}
