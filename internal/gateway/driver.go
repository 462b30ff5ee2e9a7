package gateway

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// slot is one filter of the chain for one stream.
type slot struct {
	factory FilterFactory
	filter  Filter
	handle  FilterHandle
	entered bool // OnRequestHeaders ran: response callbacks apply
	replied bool // sent a local reply already
}

// position is the iteration state of one filter in one direction.
type position struct {
	held        bool // headers held here (any stop action on headers)
	stopAll     bool // StopAll: body buffered at the host, filter not called
	watermark   bool // buffering applies back-pressure instead of a limit
	iterStopped bool // body StopAndBuffer/Watermark: accumulate and re-call
	buf         Buffer
	pendingEOS  bool     // end of stream arrived here and has not moved on
	queuedTrl   *Headers // trailers arrived here, not yet seen by the filter
	heldTrl     *Headers // trailers the filter saw and stopped
}

// flow is one direction of a stream travelling through the chain.
type flow struct {
	dir       Direction
	order     []int // slot indices in iteration order
	pos       []position
	headers   *Headers
	headerEOS bool // the headers carry end of stream (no body, no trailers)
	sent      bool // headers left the chain
	abandoned bool // superseded by a local reply, or the stream ended
}

func newFlow(dir Direction, order []int, h *Headers, headerEOS bool) *flow {
	return &flow{dir: dir, order: order, pos: make([]position, len(order)), headers: h, headerEOS: headerEOS}
}

func (f *flow) indexOf(slotIdx int) int {
	for p, i := range f.order {
		if i == slotIdx {
			return p
		}
	}
	return -1
}

// held bytes across the flow's host buffers.
func (f *flow) buffered() int64 {
	var n int64
	for i := range f.pos {
		n += int64(f.pos[i].buf.Len())
	}
	return n
}

// backpressure reports whether the source of this flow must pause.
func (f *flow) backpressure(limit int64) bool {
	if f == nil || f.abandoned {
		return false
	}
	wm := false
	for i := range f.pos {
		if f.pos[i].watermark {
			wm = true
		}
	}
	return wm && f.buffered() >= limit
}

// overLimit finds a non-watermark buffer over the limit.
func (f *flow) overLimit(limit int64) bool {
	if limit <= 0 {
		return false
	}
	var n int64
	wm := false
	for i := range f.pos {
		n += int64(f.pos[i].buf.Len())
		wm = wm || f.pos[i].watermark
	}
	return !wm && n > limit
}

type localReply struct {
	status  int
	body    []byte
	headers []HeaderField
	details string
	from    int // slot index, -1 for the gateway itself
}

// sink receives what leaves the end of the chain in one direction.
type sink interface {
	headers(f *flow)
	data(f *flow, p []byte, eos bool)
	trailers(f *flow, t *Headers)
}

// driver runs one stream through its filter chain. Everything here runs on
// the stream's goroutine except post, which may be called from anywhere.
type driver struct {
	s      *Stream
	slots  []slot
	req    *flow
	resp   *flow
	logger *slog.Logger

	reqSink, respSink sink

	deferred []func()
	reply    *localReply
	replies  int

	// expected counts posts announced by FilterHandle.Expect and not yet
	// run.
	expected atomic.Int32

	mu      sync.Mutex
	asyncQ  []func()
	closed  bool
	wake    chan struct{}
	aborted string
}

func newDriver(s *Stream, chain []FilterFactory, logger *slog.Logger) *driver {
	d := &driver{s: s, slots: make([]slot, len(chain)), logger: logger, wake: make(chan struct{}, 1)}
	for i, f := range chain {
		d.slots[i].factory = f
		d.slots[i].handle = FilterHandle{d: d, idx: i}
	}
	return d
}

func (d *driver) filter(i int) Filter {
	sl := &d.slots[i]
	if sl.filter == nil {
		sl.filter = sl.factory.NewFilter(&sl.handle)
	}
	return sl.filter
}

// post queues fn for the driver goroutine.
func (d *driver) post(fn func()) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.asyncQ = append(d.asyncQ, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

// quiet reports whether nothing is posted or announced: the driver
// goroutine may block on other work without delaying a filter.
func (d *driver) quiet() bool {
	if d.expected.Load() != 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.asyncQ) == 0
}

// runPosted runs the functions posted so far.
func (d *driver) runPosted() {
	d.mu.Lock()
	q := d.asyncQ
	d.asyncQ = nil
	d.mu.Unlock()
	for _, fn := range q {
		fn()
		d.drain()
	}
}

// close stops accepting posts and runs what is left, so no callout result
// is lost: filters see the stream has ended and act on their root state.
func (d *driver) close() {
	for {
		d.mu.Lock()
		q := d.asyncQ
		d.asyncQ = nil
		if len(q) == 0 {
			d.closed = true
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		for _, fn := range q {
			fn()
		}
		d.deferred = nil
		d.reply = nil
	}
}

func (d *driver) defer_(fn func()) { d.deferred = append(d.deferred, fn) }

// drain runs deferred control actions until none are left.
func (d *driver) drain() {
	for d.aborted == "" {
		if r := d.reply; r != nil {
			d.reply = nil
			d.doLocalReply(*r)
			continue
		}
		if len(d.deferred) == 0 {
			return
		}
		fn := d.deferred[0]
		d.deferred = d.deferred[1:]
		fn()
	}
	d.deferred = nil
}

func (d *driver) flowOf(dir Direction) *flow {
	if dir == Request {
		return d.req
	}
	return d.resp
}

// requestLocalReply halts iteration at once and sends the reply once the
// current callback has returned.
func (d *driver) requestLocalReply(r localReply) {
	if d.reply != nil {
		return
	}
	if d.req != nil {
		d.req.abandoned = true
	}
	if d.resp != nil {
		// Also once the response went downstream: the reply then resets the
		// stream, and the data the current callback saw must stop here
		// (spec/host.md §2.6: the callback's result is forced to "stop").
		d.resp.abandoned = true
	}
	d.reply = &r
}

// requestAbort halts iteration at once, like requestLocalReply, and resets
// the stream once the current callback has returned.
func (d *driver) requestAbort(reason string) {
	if d.req != nil {
		d.req.abandoned = true
	}
	if d.resp != nil {
		d.resp.abandoned = true
	}
	d.defer_(func() { d.abort(reason) })
}

// abort resets the stream.
func (d *driver) abort(reason string) {
	if d.aborted != "" {
		return
	}
	d.aborted = reason
	if d.s.details == "" || d.s.details == "via_upstream" {
		d.s.details = reason
	}
	if d.req != nil {
		d.req.abandoned = true
	}
	if d.resp != nil {
		d.resp.abandoned = true
	}
}

// runHeaders walks headers from position p to the end of the chain.
func (d *driver) runHeaders(f *flow, p int) {
	for ; p < len(f.order); p++ {
		if f.abandoned {
			return
		}
		idx := f.order[p]
		var act HeadersAction
		if f.dir == Request {
			d.slots[idx].entered = true
			d.reroute()
			act = d.filter(idx).OnRequestHeaders(f.headers, f.headerEOS)
		} else {
			act = d.filter(idx).OnResponseHeaders(f.headers, f.headerEOS)
		}
		if f.abandoned {
			return
		}
		pos := &f.pos[p]
		switch act {
		case HeadersContinue:
			continue
		case HeadersStopIteration:
			pos.held = true
		case HeadersStopAllWatermark:
			pos.held, pos.stopAll, pos.watermark = true, true, true
		default: // HeadersStopAllBuffer
			pos.held, pos.stopAll = true, true
		}
		return
	}
	f.sent = true
	d.sinkOf(f).headers(f)
}

func (d *driver) sinkOf(f *flow) sink {
	if f.dir == Request {
		return d.reqSink
	}
	return d.respSink
}

// runData walks a body chunk from position p to the end of the chain.
func (d *driver) runData(f *flow, p int, data []byte, eos bool) {
	for ; p < len(f.order); p++ {
		if f.abandoned {
			return
		}
		pos := &f.pos[p]
		if pos.buf.Len() == 0 {
			pos.buf.b = data
		} else {
			pos.buf.Append(data)
		}
		pos.pendingEOS = pos.pendingEOS || eos
		if pos.stopAll {
			d.checkLimit(f)
			return
		}
		idx := f.order[p]
		var act DataAction
		if f.dir == Request {
			act = d.filter(idx).OnRequestBody(&pos.buf, eos)
		} else {
			act = d.filter(idx).OnResponseBody(&pos.buf, eos)
		}
		if f.abandoned {
			return
		}
		switch act {
		case DataContinue:
			pos.iterStopped = false
			data = pos.buf.take()
			pos.pendingEOS = false
			if pos.held {
				pos.held = false
				d.runHeaders(f, p+1)
				if f.abandoned {
					return
				}
			}
		case DataStopAndBuffer, DataStopAndWatermark:
			pos.iterStopped = true
			if act == DataStopAndWatermark {
				pos.watermark = true
			}
			d.checkLimit(f)
			return
		default: // DataStopNoBuffer
			pos.buf.take()
			return
		}
	}
	d.sinkOf(f).data(f, data, eos)
}

// runTrailers walks trailers from position p to the end of the chain.
func (d *driver) runTrailers(f *flow, p int, t *Headers) {
	for ; p < len(f.order); p++ {
		if f.abandoned {
			return
		}
		pos := &f.pos[p]
		if pos.stopAll {
			pos.queuedTrl = t
			return
		}
		// A filter holding headers (StopIteration) or buffering the body
		// still gets the trailers, as in Envoy: only StopAll stops them.
		idx := f.order[p]
		var act TrailersAction
		if f.dir == Request {
			act = d.filter(idx).OnRequestTrailers(t)
		} else {
			act = d.filter(idx).OnResponseTrailers(t)
		}
		if f.abandoned {
			return
		}
		if act != TrailersContinue {
			pos.heldTrl = t
			return
		}
		if pos.held || pos.iterStopped {
			// Continuing from the trailer callback releases what the
			// filter held: headers, then the buffered body.
			wasHeld := pos.held
			pos.held, pos.iterStopped, pos.watermark = false, false, false
			data := pos.buf.take()
			pos.pendingEOS = false
			if wasHeld {
				d.runHeaders(f, p+1)
				if f.abandoned {
					return
				}
			}
			if len(data) > 0 {
				d.runData(f, p+1, data, false)
				if f.abandoned {
					return
				}
			}
		}
	}
	d.sinkOf(f).trailers(f, t)
}

// checkLimit answers 413/500 when a non-watermark buffer outgrows its limit.
func (d *driver) checkLimit(f *flow) {
	if !f.overLimit(d.s.bufferLimit[f.dir]) {
		return
	}
	if f.dir == Request {
		d.requestLocalReply(gatewayReply(413, "request_payload_too_large", "request body exceeds the buffer limit of a filter"))
	} else {
		if d.resp != nil && d.resp.sent {
			d.abort("response_payload_too_large")
			return
		}
		d.requestLocalReply(gatewayReply(500, "response_payload_too_large", "response body exceeds the buffer limit of a filter"))
	}
}

// resume continues the direction dir at the filter in slot idx.
func (d *driver) resume(dir Direction, idx int) {
	f := d.flowOf(dir)
	if f == nil || f.abandoned {
		return
	}
	p := f.indexOf(idx)
	if p < 0 {
		return
	}
	pos := &f.pos[p]
	switch {
	case pos.stopAll:
		// Release headers, then hand the buffered body to this same filter.
		pos.stopAll, pos.held, pos.watermark = false, false, false
		data, eos, trl := pos.buf.take(), pos.pendingEOS, pos.queuedTrl
		pos.pendingEOS, pos.queuedTrl = false, nil
		d.runHeaders(f, p+1)
		if f.abandoned {
			return
		}
		if len(data) > 0 || eos {
			d.runData(f, p, data, eos)
		}
		if trl != nil && !f.abandoned {
			d.runTrailers(f, p, trl)
		}
	case pos.held || pos.iterStopped:
		// The filter saw everything it buffered: forward it.
		wasHeld := pos.held
		pos.held, pos.iterStopped, pos.watermark = false, false, false
		data, eos, trl, seenTrl := pos.buf.take(), pos.pendingEOS, pos.queuedTrl, pos.heldTrl
		pos.pendingEOS, pos.queuedTrl, pos.heldTrl = false, nil, nil
		if wasHeld {
			d.runHeaders(f, p+1)
			if f.abandoned {
				return
			}
		}
		if len(data) > 0 || eos {
			d.runData(f, p+1, data, eos)
		}
		switch {
		case f.abandoned:
		case trl != nil:
			d.runTrailers(f, p, trl)
		case seenTrl != nil:
			// The filter saw and stopped the trailers: they go on too.
			d.runTrailers(f, p+1, seenTrl)
		}
	case pos.heldTrl != nil:
		t := pos.heldTrl
		pos.heldTrl = nil
		d.runTrailers(f, p+1, t)
	}
}

// inject feeds data into dir right after slot idx.
func (d *driver) inject(dir Direction, idx int, data []byte, eos bool) {
	f := d.flowOf(dir)
	if f == nil || f.abandoned {
		return
	}
	p := f.indexOf(idx)
	if p < 0 {
		return
	}
	d.runData(f, p+1, data, eos)
}

// reroute recomputes the route after header changes, unless disabled.
func (d *driver) reroute() {
	h := d.s.reqHeaders
	if h == nil || !h.Dirty() {
		return
	}
	h.ResetDirty()
	if !d.s.routeRecheck || d.s.rematch == nil {
		return
	}
	d.s.rematch()
}

// doLocalReply runs a local reply through the response callbacks of the
// filters that saw the request, in reverse order.
func (d *driver) doLocalReply(r localReply) {
	d.replies++
	if d.respStarted() || d.replies > 4 {
		d.abort("local_reply_after_response_started")
		return
	}
	if d.s.onLocalReply != nil {
		d.s.onLocalReply()
	}
	if d.req != nil {
		d.req.abandoned = true
	}
	if d.resp != nil {
		d.resp.abandoned = true
	}
	d.s.details = r.details
	h := NewHeaders(HeaderField{":status", itoa(r.status)})
	hasCT := false
	for _, f := range r.headers {
		if equalFoldASCII(f.Name, ":status") {
			continue
		}
		_ = h.Add(f.Name, f.Value)
		hasCT = hasCT || equalFoldASCII(f.Name, "content-type")
	}
	if !hasCT && len(r.body) > 0 {
		_ = h.Add("content-type", "text/plain; charset=utf-8")
	}
	h.ResetDirty()
	d.s.respHeaders = h
	d.s.respTrailers = nil
	d.resp = newFlow(Response, d.enteredReverse(), h, len(r.body) == 0)
	d.runHeaders(d.resp, 0)
	if len(r.body) > 0 && !d.resp.abandoned {
		d.runData(d.resp, 0, append([]byte(nil), r.body...), true)
	}
}

func (d *driver) respStarted() bool { return d.s.respStarted }

// enteredReverse lists, in response order, the filters that saw the request.
func (d *driver) enteredReverse() []int {
	var out []int
	for i := len(d.slots) - 1; i >= 0; i-- {
		if d.slots[i].entered {
			out = append(out, i)
		}
	}
	return out
}

// finishFilters runs OnLog then OnDestroy on every filter of the chain.
func (d *driver) finishFilters() {
	for i := range d.slots {
		d.filter(i).OnLog()
	}
	for i := range d.slots {
		d.slots[i].filter.OnDestroy()
	}
}

// attachBody turns a held header-only direction into headers plus data.
func (d *driver) attachBody(dir Direction, idx int, data []byte) {
	f := d.flowOf(dir)
	if f == nil || f.abandoned || f.sent {
		return
	}
	p := f.indexOf(idx)
	if p < 0 {
		return
	}
	pos := &f.pos[p]
	f.headerEOS = false
	pos.held, pos.stopAll, pos.watermark = false, false, false
	d.runHeaders(f, p+1)
	if !f.abandoned {
		d.runData(f, p+1, data, true)
	}
}
