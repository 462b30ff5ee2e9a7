package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/internal/telemetry"
)

func canonicalKey(s string) string { return textproto.CanonicalMIMEHeaderKey(s) }

// newRequestID returns a random UUIDv4-formatted id.
func newRequestID() string {
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// outcome is what the proxy path reports back for logging.
type outcome struct {
	status   int
	bytesIn  int64
	bytesOut int64
	upStart  time.Time
	upDur    time.Duration
	ttfb     time.Duration
	reset    bool // the client connection must be reset
}

// serve handles one client request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, listener, scheme string) {
	gen := s.acquire()
	defer gen.release()
	start := time.Now()
	m := s.opts.Metrics
	if m != nil {
		m.RequestStarted()
	}
	id := prepareRequestHeaders(r, scheme)
	ctx := r.Context()
	var span trace.Span
	if s.opts.Tracer != nil {
		prop := s.opts.Propagator
		if prop != nil {
			ctx = prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span = s.opts.Tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		if prop != nil {
			prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
		}
	}
	st := &Stream{
		ctx: ctx, id: id, start: start, listener: listener, scheme: scheme,
		protocol: protoName(r), client: r.RemoteAddr, routeRecheck: true, authority: r.Host,
	}
	if r.TLS != nil {
		st.serverSNI = r.TLS.ServerName
	}
	st.bufferLimit[Request] = gen.maxBody
	if st.bufferLimit[Request] <= 0 {
		st.bufferLimit[Request] = defaultResponseBufferLimit
	}
	st.bufferLimit[Response] = defaultResponseBufferLimit
	pathQuery := r.URL.RequestURI()
	if st.route = gen.Routes.Match(r.Host, pathQuery, r.Method, httpHeaderSource(r.Header)); st.route != nil {
		st.cluster = st.route.pickCluster()
	}
	if gen.maxBody > 0 {
		if r.ContentLength > gen.maxBody {
			r.Body = http.NoBody
		} else if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, gen.maxBody)
		}
	}
	if r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody {
		// Keep reading the request body after response headers went out
		// (upstreams may answer before they consumed it; golang/go#40747).
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	var chain []FilterFactory
	if gen.Chain != nil {
		chain = gen.Chain(st)
	}
	var out outcome
	switch {
	case gen.maxBody > 0 && r.ContentLength > gen.maxBody:
		out = s.replyDirect(w, st, gatewayReply(http.StatusRequestEntityTooLarge, DetailsRequestTooLarge, "request body too large"))
	case len(chain) == 0:
		out = s.proxyDirect(ctx, w, r, st, gen)
	default:
		out = s.proxyChain(ctx, w, r, st, gen, chain)
	}
	s.finishRequest(st, r, out, span)
	if out.reset {
		panic(http.ErrAbortHandler)
	}
}

const defaultResponseBufferLimit = 100 << 20

func (s *Server) finishRequest(st *Stream, r *http.Request, out outcome, span trace.Span) {
	rec := telemetry.Record{
		Time: st.start, Listener: st.listener, Method: r.Method, Authority: r.Host,
		Path: r.URL.RequestURI(), Protocol: st.protocol, ClientAddr: st.client,
		UserAgent: r.UserAgent(), Status: out.status, Route: st.RouteName(),
		UpstreamHost: st.upstreamHost, Duration: time.Since(st.start),
		UpstreamDuration: out.upDur, TimeToFirstByte: out.ttfb,
		BytesIn: out.bytesIn, BytesOut: out.bytesOut, RequestID: st.id,
		ResponseDetails: st.details,
	}
	if st.cluster != nil {
		rec.Cluster = st.cluster.Name()
	}
	if v, ok := st.props["ai_log"]; ok {
		rec.AILog = aiLogJSON(v)
	}
	if span != nil {
		sc := span.SpanContext()
		rec.TraceID = sc.TraceID().String()
		span.SetAttributes(
			attribute.Int("http.response.status_code", out.status),
			attribute.String("sluice.route", rec.Route),
			attribute.String("sluice.cluster", rec.Cluster),
			attribute.String("sluice.response_details", rec.ResponseDetails),
		)
		for k, v := range st.props {
			if tag, ok := strings.CutPrefix(k, "trace_span_tag."); ok {
				span.SetAttributes(attribute.String(tag, string(v)))
			}
		}
		if out.status >= 500 || out.reset {
			span.SetStatus(codes.Error, st.details)
		}
		span.End()
	}
	if m := s.opts.Metrics; m != nil {
		m.RequestFinished(&rec)
	}
	if a := s.opts.AccessLog; a != nil {
		a.Write(&rec)
	}
}

// replyDirect writes a gateway reply with no filters involved.
func (s *Server) replyDirect(w http.ResponseWriter, st *Stream, lr localReply) outcome {
	st.details = lr.details
	h := w.Header()
	for _, f := range lr.headers {
		h.Set(f.Name, f.Value)
	}
	h.Set("X-Request-Id", st.id)
	w.WriteHeader(lr.status)
	n, _ := w.Write(lr.body)
	return outcome{status: lr.status, bytesOut: int64(n)}
}

// proxyDirect is the no-filter path: one streaming copy each way.
func (s *Server) proxyDirect(ctx context.Context, w http.ResponseWriter, r *http.Request, st *Stream, gen *Generation) outcome {
	if st.route == nil {
		return s.replyDirect(w, st, gatewayReply(http.StatusNotFound, DetailsRouteNotFound, messageFor(DetailsRouteNotFound)))
	}
	c := st.cluster
	upCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if gen.reqTO > 0 {
		var stop context.CancelFunc
		upCtx, stop = context.WithTimeoutCause(upCtx, gen.reqTO, errRequestTimeout)
		defer stop()
	}
	timer := newResponseTimer(st.route.Timeout(c), func() { cancel(errUpstreamTimeout) })
	out := r.WithContext(upCtx)
	out.RequestURI = ""
	out.Close = false // the client's Connection: close is hop-by-hop
	pathQuery := st.route.rewritePath(r.URL.RequestURI())
	u, err := url.ParseRequestURI(pathQuery)
	if err != nil {
		return s.replyDirect(w, st, gatewayReply(http.StatusBadRequest, "invalid_path", "the request path is not valid"))
	}
	out.URL = u
	if rw := st.route.Spec.Rewrite; rw != nil && rw.Host != "" {
		out.Host = rw.Host
	}
	var body *countingBody
	if (r.ContentLength == 0 && r.Body == http.NoBody) || r.Body == nil {
		out.Body = nil
		timer.start()
	} else {
		body = &countingBody{ReadCloser: r.Body, length: r.ContentLength, onEnd: timer.start}
		out.Body = body
	}
	var o outcome
	o.upStart = time.Now()
	resp, ep, err := c.RoundTrip(out, st.override)
	timer.stop()
	if body != nil {
		o.bytesIn = body.n.Load()
	}
	if ep != nil {
		st.upstreamHost = ep.Address()
	}
	if err != nil {
		o.upDur = time.Since(o.upStart)
		if r.Context().Err() != nil {
			st.details = DetailsDownstreamGone
			o.status = 499
			return o
		}
		status, details, kind := classifyUpstreamError(upCtx, err)
		if m := s.opts.Metrics; m != nil {
			m.UpstreamError(c.Name(), kind)
		}
		s.logger.Debug("upstream request failed", "request_id", st.id, "cluster", c.Name(), "details", details, "error", err)
		r2 := s.replyDirect(w, st, gatewayReply(status, details, messageFor(details)))
		r2.bytesIn, r2.upDur = o.bytesIn, o.upDur
		return r2
	}
	defer resp.Body.Close()
	st.details = DetailsViaUpstream
	removeHopHeaders(resp.Header)
	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	o.status = resp.StatusCode
	st.respStarted = true
	stream := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if o.bytesOut == 0 {
				o.ttfb = time.Since(st.start)
			}
			wn, werr := w.Write(buf[:n])
			o.bytesOut += int64(wn)
			if werr != nil {
				st.details = DetailsDownstreamGone
				o.upDur = time.Since(o.upStart)
				return o
			}
			if stream {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			o.upDur = time.Since(o.upStart)
			if r.Context().Err() != nil {
				st.details = DetailsDownstreamGone
				return o
			}
			st.details = DetailsUpstreamResetLate
			if errors.Is(context.Cause(upCtx), errRequestTimeout) {
				st.details = DetailsRequestTimeout
			}
			if m := s.opts.Metrics; m != nil {
				_, _, kind := classifyUpstreamError(upCtx, rerr)
				m.UpstreamError(c.Name(), kind)
			}
			o.reset = true
			return o
		}
	}
	o.upDur = time.Since(o.upStart)
	for k, vs := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vs
	}
	if body != nil {
		o.bytesIn = body.n.Load()
	}
	return o
}

// aiLogJSON returns the ai_log property as JSON. Higress plugins store it
// JSON-string-escaped without the surrounding quotes (Higress's access log
// format wraps it in quotes); such a value is unescaped so the access log
// embeds the object itself. Anything else is returned as it is.
func aiLogJSON(v []byte) []byte {
	if json.Valid(v) {
		return v
	}
	quoted := make([]byte, 0, len(v)+2)
	quoted = append(append(append(quoted, '"'), v...), '"')
	var s string
	if json.Unmarshal(quoted, &s) == nil && json.Valid([]byte(s)) {
		return []byte(s)
	}
	return v
}
