package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/cluster"
)

// exchange connects a driver to the client and the upstream: it reads the
// client body, talks to the cluster, writes the response, and feeds every
// event into the driver's single loop.
type exchange struct {
	srv *Server
	gen *Generation
	d   *driver
	s   *Stream
	w   http.ResponseWriter
	r   *http.Request
	rc  *http.ResponseController

	reqEvents chan bodyEvent
	reading   bool

	upEvents  chan upEvent
	upCtx     context.Context
	upCancel  context.CancelCauseFunc
	upDone    chan struct{} // closed when the driver stops listening to upEvents
	upTimer   *responseTimer
	upPending bool // headers went upstream-side, request waits for its first body bytes
	upBody    *bodyPipe
	upReq     *http.Request
	upCluster *cluster.Cluster

	// headEv is the upstream's answer when the driver goroutine waited for
	// it itself (see startUpstream); the loop delivers it next.
	headEv *upEvent
	// reqDeadline is when the request times out (zero: never).
	reqDeadline time.Time

	out      outcome
	finished bool
	// streamResp is set for upstream responses of unknown length or SSE:
	// they are flushed chunk by chunk; others go out in as few writes as
	// the codec likes.
	streamResp bool
}

type bodyEvent struct {
	data     []byte
	eof      bool
	trailers http.Header
	err      error
}

type upEventKind int

const (
	upHeaders upEventKind = iota
	upData
	upEnd
	upFail
)

type upEvent struct {
	kind     upEventKind
	resp     *http.Response
	ep       *cluster.Endpoint
	err      error
	data     []byte
	trailers http.Header
	// whole is set on an upHeaders event that carries the complete body
	// (small responses of known length are read in one go).
	whole bool
	// failAfter is set on an upHeaders event whose body failed before it
	// was complete: the headers go on, then the failure.
	failAfter error
}

// smallBody is the largest body of known length read in one go instead of
// streamed chunk by chunk: it saves goroutine hand-offs per request.
const smallBody = 64 << 10

// proxyChain runs the request through the filter chain.
func (s *Server) proxyChain(ctx context.Context, w http.ResponseWriter, r *http.Request, st *Stream, gen *Generation, chain []FilterFactory) outcome {
	// The stream lives in the request's context, which net/http cancels
	// when the handler returns: that ends the client reader and anything
	// else tied to the stream.
	st.ctx = ctx
	e := &exchange{srv: s, gen: gen, s: st, w: w, r: r, rc: http.NewResponseController(w)}
	d := newDriver(st, chain, s.logger)
	e.d = d
	d.reqSink = requestSink{e}
	d.respSink = responseSink{e}
	st.rematch = func() {
		h := st.reqHeaders
		rt := gen.Routes.Match(h.Value(":authority"), h.Value(":path"), h.Value(":method"), h)
		if rt != st.route {
			st.route = rt
			st.cluster = nil
			if rt != nil {
				st.cluster = rt.pickCluster()
			}
		}
	}
	st.onLocalReply = e.stopUpstream

	var reqTimeout <-chan time.Time
	if gen.reqTO > 0 {
		t := time.NewTimer(gen.reqTO)
		defer t.Stop()
		reqTimeout = t.C
		e.reqDeadline = time.Now().Add(gen.reqTO)
	}
	headerEOS := r.Body == nil || r.Body == http.NoBody
	var small *bodyEvent
	if !headerEOS && r.ContentLength > 0 && r.ContentLength <= smallBody && len(r.Trailer) == 0 {
		// A small body of known length is read before the chain starts: one
		// chunk with end of stream, and no reader goroutine.
		ev := readSmall(r)
		small = &ev
	}
	h := requestToHeaders(r.Method, r.URL.RequestURI(), r.Host, st.scheme, r.Header)
	st.reqHeaders = h
	d.req = newFlow(Request, seq(len(chain)), h, headerEOS)
	d.runHeaders(d.req, 0)
	d.drain()
	switch {
	case small != nil:
		e.onClientBody(*small)
		d.drain()
	case !headerEOS:
		e.reading = true
		e.reqEvents = make(chan bodyEvent, 1)
		go e.readClient(ctx)
	}
	for !e.finished && d.aborted == "" {
		if ev := e.headEv; ev != nil {
			e.headEv = nil
			e.onUpstream(*ev)
			d.drain()
			continue
		}
		var reqCh <-chan bodyEvent
		if e.reading && !d.req.backpressure(st.bufferLimit[Request]) {
			reqCh = e.reqEvents
		}
		var upCh <-chan upEvent
		if e.upEvents != nil && !d.resp.backpressure(st.bufferLimit[Response]) {
			upCh = e.upEvents
		}
		select {
		case ev := <-reqCh:
			e.onClientBody(ev)
		case ev := <-upCh:
			e.onUpstream(ev)
		case <-d.wake:
			d.runPosted()
		case <-reqTimeout:
			reqTimeout = nil
			if !st.respStarted {
				d.requestLocalReply(gatewayReply(http.StatusGatewayTimeout, DetailsRequestTimeout, messageFor(DetailsRequestTimeout)))
			} else {
				d.abort(DetailsRequestTimeout)
			}
		case <-ctx.Done():
			d.abort(DetailsDownstreamGone)
		}
		d.drain()
	}
	e.stopUpstream()
	d.close()
	d.finishFilters()
	if d.aborted != "" {
		if d.aborted == DetailsDownstreamGone {
			if !st.respStarted {
				e.out.status = 499
			}
		} else {
			e.out.reset = true
			if !st.respStarted {
				e.out.status = 0
			}
		}
	}
	if e.upBody != nil {
		e.out.bytesIn = e.upBody.n
	}
	return e.out
}

// seq returns 0, 1, …, n-1. Callers must not modify it: short ones are
// shared.
func seq(n int) []int {
	if n < len(seqs) {
		return seqs[n]
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

var seqs = func() (t [17][]int) {
	all := make([]int, len(t))
	for i := range all {
		all[i] = i
	}
	for n := range t {
		t[n] = all[:n:n]
	}
	return t
}()

// readSmall reads a whole body of known, small length.
func readSmall(r *http.Request) bodyEvent {
	b := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, b)
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = fmt.Errorf("client sent %d of %d body bytes: %w", n, r.ContentLength, io.ErrUnexpectedEOF)
		}
		return bodyEvent{err: err}
	}
	return bodyEvent{data: b, eof: true}
}

// readClient pumps the client body into reqEvents.
func (e *exchange) readClient(ctx context.Context) {
	size := 32 << 10
	if cl := e.r.ContentLength; cl > 0 && cl < int64(size) {
		size = int(cl) + 1
	}
	buf := make([]byte, size)
	for {
		n, err := e.r.Body.Read(buf)
		ev := bodyEvent{}
		if n > 0 {
			ev.data = append([]byte(nil), buf[:n]...)
		}
		switch {
		case err == io.EOF:
			ev.eof = true
			if len(e.r.Trailer) > 0 {
				ev.trailers = e.r.Trailer
			}
		case err != nil:
			ev.err = err
		case n == 0:
			continue
		}
		select {
		case e.reqEvents <- ev:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (e *exchange) onClientBody(ev bodyEvent) {
	d := e.d
	if ev.err != nil {
		e.reading = false
		var mbe *http.MaxBytesError
		if errors.As(ev.err, &mbe) {
			if !e.s.respStarted {
				d.requestLocalReply(gatewayReply(http.StatusRequestEntityTooLarge, DetailsRequestTooLarge, messageFor(DetailsRequestTooLarge)))
			} else {
				d.abort(DetailsRequestTooLarge)
			}
			return
		}
		d.abort(DetailsDownstreamGone)
		return
	}
	if ev.eof {
		e.reading = false
	}
	if d.req.abandoned {
		return
	}
	if ev.eof && ev.trailers != nil {
		t := NewHeaders()
		for k, vs := range ev.trailers {
			for _, v := range vs {
				_ = t.Add(k, v)
			}
		}
		t.ResetDirty()
		e.s.reqTrailers = t
		if len(ev.data) > 0 {
			d.runData(d.req, 0, ev.data, false)
		}
		if !d.req.abandoned {
			d.runTrailers(d.req, 0, t)
		}
		return
	}
	d.runData(d.req, 0, ev.data, ev.eof)
}

// requestSink sends what leaves the request chain to the upstream.
type requestSink struct{ e *exchange }

func (k requestSink) headers(f *flow) {
	e := k.e
	if f.headerEOS {
		e.startUpstream(nil, 0)
		return
	}
	e.upPending = true
}

func (k requestSink) data(f *flow, p []byte, eos bool) {
	e := k.e
	if e.upPending {
		e.upPending = false
		if eos {
			e.startUpstream(p, int64(len(p)))
			return
		}
		e.startUpstream(nil, -1)
	}
	if e.upBody == nil {
		return
	}
	if len(p) > 0 {
		e.upBody.send(e.upCtx, p)
	}
	if eos {
		e.upBody.close()
		e.upTimer.start()
	}
}

func (k requestSink) trailers(f *flow, t *Headers) {
	e := k.e
	if e.upPending {
		e.upPending = false
		e.startUpstream(nil, -1)
	}
	t.Seal()
	if e.upTimer != nil {
		e.upTimer.start()
	}
	if e.upBody != nil {
		e.upBody.closeWithTrailers(append([]HeaderField(nil), t.Fields()...))
	}
}

// startUpstream sends the request headers upstream. body is the whole body
// when length ≥ 0; length -1 streams through a pipe.
func (e *exchange) startUpstream(body []byte, length int64) {
	d, st := e.d, e.s
	h := st.reqHeaders
	if h.Dirty() {
		d.reroute()
	}
	h.Seal()
	if st.route == nil {
		d.requestLocalReply(gatewayReply(http.StatusNotFound, DetailsRouteNotFound, messageFor(DetailsRouteNotFound)))
		return
	}
	c := st.cluster
	u, err := url.ParseRequestURI(st.route.rewritePath(h.Value(":path")))
	if err != nil {
		d.requestLocalReply(gatewayReply(http.StatusBadRequest, "invalid_path", "the request path is not valid"))
		return
	}
	hdr := make(http.Header, h.Len())
	h.toHTTPHeader(hdr)
	delete(hdr, "Content-Length")
	req := &http.Request{
		Method:     h.Value(":method"),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       h.Value(":authority"),
	}
	if rw := st.route.Spec.Rewrite; rw != nil && rw.Host != "" {
		req.Host = rw.Host
	}
	switch {
	case length == 0:
		req.Body = http.NoBody
	case length > 0:
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = length
		e.out.bytesIn = length
	default:
		e.upBody = newBodyPipe()
		// The transport owns the Trailer map once the request is sent;
		// the body fills it at its end (see pipeBody).
		req.Trailer = http.Header{}
		e.upBody.trailer = req.Trailer
		req.Body = pipeBody{e.upBody}
		req.ContentLength = -1
	}
	ctx, cancel := context.WithCancelCause(st.ctx)
	e.upCtx, e.upCancel, e.upReq, e.upCluster = ctx, cancel, req.WithContext(ctx), c
	e.upTimer = newResponseTimer(st.route.Timeout(c), func() { cancel(errUpstreamTimeout) })
	if length >= 0 {
		// The whole body is in hand: the request is complete now.
		e.upTimer.start()
	}
	e.out.upStart = time.Now()
	if length >= 0 && e.d.quiet() {
		e.awaitHead(c)
		return
	}
	e.upEvents, e.upDone = make(chan upEvent, 1), make(chan struct{})
	go e.roundTrip(e.upReq, c, st.override, e.upEvents, e.upDone)
}

// awaitHead performs the upstream exchange on the driver goroutine up to
// the response headers (and a small body), saving the hand-off through a
// goroutine of its own. It is only used when nothing else can need the
// driver meanwhile: the request is complete, so no client body arrives, and
// no filter waits for an asynchronous call (driver.quiet), so nothing is
// posted. The client going away cancels the exchange through its context,
// as the request timeout does here. A body to stream is pumped by a
// goroutine as in roundTrip.
func (e *exchange) awaitHead(c *cluster.Cluster) {
	if !e.reqDeadline.IsZero() {
		cancel := e.upCancel
		t := time.AfterFunc(time.Until(e.reqDeadline), func() { cancel(errRequestTimeout) })
		defer t.Stop()
	}
	ev, resp := e.head(e.upReq, c, e.s.override)
	if resp != nil {
		e.upEvents, e.upDone = make(chan upEvent, 1), make(chan struct{})
		go e.pump(resp, e.upEvents, e.upDone)
	}
	e.headEv = &ev
}

// roundTrip runs on its own goroutine: it performs the exchange and pumps
// the response into events until done is closed. It gets both channels as
// arguments: the driver goroutine sets e.upEvents to nil to stop listening,
// and must not race with this goroutine reading the field. It must not
// stop at the request context: a route timeout cancels that context, and
// the driver still waits to hear about it.
func (e *exchange) roundTrip(req *http.Request, c *cluster.Cluster, override string, events chan<- upEvent, done <-chan struct{}) {
	ev, resp := e.head(req, c, override)
	select {
	case events <- ev:
	case <-done:
		if resp != nil {
			resp.Body.Close()
		}
		return
	}
	if resp != nil {
		e.pump(resp, events, done)
	}
}

// head sends the request and returns the upstream's first event: the
// response headers, with the whole body when it is small and of known
// length, or the failure. resp is returned when its body remains to be
// pumped.
func (e *exchange) head(req *http.Request, c *cluster.Cluster, override string) (upEvent, *http.Response) {
	resp, ep, err := c.RoundTrip(req, override)
	if err != nil {
		return upEvent{kind: upHeaders, ep: ep, err: err}, nil
	}
	if resp.ContentLength >= 0 && resp.ContentLength <= smallBody {
		defer resp.Body.Close()
		b := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			// The headers go out, then the failure.
			return upEvent{kind: upHeaders, resp: resp, ep: ep, failAfter: io.ErrUnexpectedEOF}, nil
		}
		return upEvent{kind: upHeaders, resp: resp, ep: ep, data: b, whole: true, trailers: resp.Trailer}, nil
	}
	return upEvent{kind: upHeaders, resp: resp, ep: ep}, resp
}

// pump sends the response body to events until its end, a failure or done.
func (e *exchange) pump(resp *http.Response, events chan<- upEvent, done <-chan struct{}) {
	defer resp.Body.Close()
	send := func(ev upEvent) bool {
		select {
		case events <- ev:
			return true
		case <-done:
			return false
		}
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if !send(upEvent{kind: upData, data: append([]byte(nil), buf[:n]...)}) {
				return
			}
		}
		if rerr == io.EOF {
			send(upEvent{kind: upEnd, trailers: resp.Trailer})
			return
		}
		if rerr != nil {
			send(upEvent{kind: upFail, err: rerr})
			return
		}
	}
}

func (e *exchange) onUpstream(ev upEvent) {
	d, st := e.d, e.s
	if ev.kind == upHeaders {
		e.upTimer.stop()
		if ev.ep != nil {
			st.upstreamHost = ev.ep.Address()
		}
		if ev.err != nil {
			e.out.upDur = time.Since(e.out.upStart)
			e.upEvents = nil
			if e.r.Context().Err() != nil {
				d.abort(DetailsDownstreamGone)
				return
			}
			status, details, kind := classifyUpstreamError(e.upCtx, ev.err)
			if m := e.srv.opts.Metrics; m != nil {
				m.UpstreamError(e.upCluster.Name(), kind)
			}
			e.srv.logger.Debug("upstream request failed", "request_id", st.id, "cluster", e.upCluster.Name(), "details", details, "error", ev.err)
			d.requestLocalReply(gatewayReply(status, details, messageFor(details)))
			return
		}
		resp := ev.resp
		st.details = DetailsViaUpstream
		removeHopHeaders(resp.Header)
		h := responseToHeaders(resp.StatusCode, resp.Header)
		st.respHeaders = h
		e.streamResp = resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
		eos := resp.Body == http.NoBody || (resp.ContentLength == 0 && len(resp.Trailer) == 0)
		d.resp = newFlow(Response, d.enteredReverse(), h, eos)
		d.runHeaders(d.resp, 0)
		if eos {
			e.upEvents = nil
			e.out.upDur = time.Since(e.out.upStart)
			return
		}
		switch {
		case ev.failAfter != nil:
			e.onUpstream(upEvent{kind: upFail, err: ev.failAfter})
		case ev.whole:
			e.onUpstream(upEvent{kind: upEnd, data: ev.data, trailers: ev.trailers})
		}
		return
	}
	if d.resp == nil || d.resp.abandoned {
		return
	}
	switch ev.kind {
	case upData:
		d.runData(d.resp, 0, ev.data, false)
	case upEnd:
		e.upEvents = nil
		e.out.upDur = time.Since(e.out.upStart)
		if len(ev.trailers) > 0 {
			if len(ev.data) > 0 {
				d.runData(d.resp, 0, ev.data, false)
				if d.resp.abandoned {
					return
				}
			}
			t := NewHeaders()
			for k, vs := range ev.trailers {
				for _, v := range vs {
					_ = t.Add(k, v)
				}
			}
			t.ResetDirty()
			st.respTrailers = t
			d.runTrailers(d.resp, 0, t)
			return
		}
		d.runData(d.resp, 0, ev.data, true)
	case upFail:
		e.upEvents = nil
		e.out.upDur = time.Since(e.out.upStart)
		if m := e.srv.opts.Metrics; m != nil {
			m.UpstreamError(e.upCluster.Name(), "reset")
		}
		if !st.respStarted {
			d.requestLocalReply(gatewayReply(http.StatusBadGateway, DetailsUpstreamResetLate, "the upstream connection failed while sending the response"))
			return
		}
		d.abort(DetailsUpstreamResetLate)
	}
}

// stopUpstream cancels the upstream exchange, if any.
func (e *exchange) stopUpstream() {
	if e.upCancel != nil {
		e.upCancel(context.Canceled)
		e.upTimer.stop()
	}
	if e.upDone != nil {
		close(e.upDone)
		e.upDone = nil
	}
	if e.upBody != nil {
		e.upBody.abort()
	}
	e.upEvents = nil
	e.upPending = false
}

// responseSink writes what leaves the response chain to the client.
type responseSink struct{ e *exchange }

func (k responseSink) headers(f *flow) {
	e := k.e
	st := e.s
	status, _ := strconv.Atoi(f.headers.Value(":status"))
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	dst := e.w.Header()
	f.headers.toHTTPHeader(dst)
	if len(f.order) > 0 && !f.headerEOS {
		// Filters may change the body: let the codec frame it.
		delete(dst, "Content-Length")
	}
	if _, ok := dst["X-Request-Id"]; !ok && st.details != DetailsViaUpstream {
		dst["X-Request-Id"] = []string{st.id}
	}
	f.headers.Seal()
	st.respStarted = true
	e.out.status = status
	e.w.WriteHeader(status)
	if f.headerEOS {
		e.finished = true
		return
	}
	if e.streamResp {
		_ = e.rc.Flush()
	}
}

func (k responseSink) data(f *flow, p []byte, eos bool) {
	e := k.e
	if len(p) > 0 {
		if e.out.bytesOut == 0 {
			e.out.ttfb = time.Since(e.s.start)
		}
		n, err := e.w.Write(p)
		e.out.bytesOut += int64(n)
		if err != nil {
			e.d.abort(DetailsDownstreamGone)
			return
		}
		if e.streamResp && !eos {
			_ = e.rc.Flush()
		}
	}
	if eos {
		e.finished = true
	}
}

func (k responseSink) trailers(f *flow, t *Headers) {
	e := k.e
	dst := e.w.Header()
	for _, fl := range t.Fields() {
		key := http.TrailerPrefix + canonicalKey(fl.Name)
		dst[key] = append(dst[key], fl.Value)
	}
	t.Seal()
	e.finished = true
}

// bodyPipe streams a request body to the transport through a writer
// goroutine, so the driver never blocks on a slow upstream for long.
type bodyPipe struct {
	pr     *io.PipeReader
	pw     *io.PipeWriter
	ch     chan []byte
	closed bool
	n      int64

	// trailer is the upstream request's Trailer map and trl the trailers
	// for it, set by the driver before close; pipeBody copies them over
	// on the transport's goroutine when it reads the end of the body.
	trailer http.Header
	trl     []HeaderField
}

// pipeBody is the upstream request body read by the transport.
type pipeBody struct{ b *bodyPipe }

func (p pipeBody) Read(q []byte) (int, error) {
	n, err := p.b.pr.Read(q)
	if err == io.EOF && p.b.trl != nil {
		for _, f := range p.b.trl {
			p.b.trailer.Add(f.Name, f.Value)
		}
		p.b.trl = nil
	}
	return n, err
}

func (p pipeBody) Close() error { return p.b.pr.Close() }

func newBodyPipe() *bodyPipe {
	pr, pw := io.Pipe()
	b := &bodyPipe{pr: pr, pw: pw, ch: make(chan []byte, 16)}
	go func() {
		for p := range b.ch {
			if _, err := pw.Write(p); err != nil {
				for range b.ch {
				}
				return
			}
		}
		_ = pw.Close()
	}()
	return b
}

func (b *bodyPipe) send(ctx context.Context, p []byte) {
	if b.closed {
		return
	}
	b.n += int64(len(p))
	select {
	case b.ch <- p:
	case <-ctx.Done():
	}
}

func (b *bodyPipe) close() {
	if !b.closed {
		b.closed = true
		close(b.ch)
	}
}

// closeWithTrailers ends the body with trailers.
func (b *bodyPipe) closeWithTrailers(trl []HeaderField) {
	if !b.closed {
		b.trl = trl
		b.close()
	}
}

func (b *bodyPipe) abort() {
	b.close()
	_ = b.pr.CloseWithError(context.Canceled)
}
