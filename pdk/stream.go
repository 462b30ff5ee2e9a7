package pdk

import (
	"errors"
	"math"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// This file is the stream driver on the guest side: it implements the
// SDK's HttpContext, picks the request's configuration and calls the
// plugin's callbacks with wasm-go's body semantics (plugins-B.md §0.2).
// Every callback recovers panics (fail open: Continue), as wasm-go does.

type stream[C any] struct {
	types.DefaultHttpContext
	root *rootContext[C]
	ctx  *Context
	cfg  C
	// active: a configuration applies to this request.
	active bool
	// pendingBody[dir]: a buffered body callback is waiting for the end of
	// the stream (the kit returned Pause for earlier chunks).
	pendingReq, pendingResp bool
}

func (s *stream[C]) begin(p Phase) {
	s.ctx.phase = p
	enter(&s.root.meta, s.ctx)
}

// guard recovers a panic in a callback: logged, and the callback returns
// Continue (fail open).
func (s *stream[C]) guard(where string, action *Action) {
	if x := recover(); x != nil {
		if !recovered(where, x) {
			panic(x)
		}
		*action = Continue
	}
}

// OnHttpRequestHeaders caches the request's pseudo-headers, picks the
// configuration and runs OnRequestHeaders.
func (s *stream[C]) OnHttpRequestHeaders(_ int, eos bool) (action Action) {
	s.begin(PhaseRequestHeaders)
	defer s.guard("request headers", &action)
	c := s.ctx
	p := s.root.p
	hdrs, _ := proxywasm.GetHttpRequestHeaders()
	var connection, upgrade, encoding string
	for _, h := range hdrs {
		switch strings.ToLower(h[0]) {
		case ":scheme":
			c.scheme = h[1]
		case ":authority":
			c.authority = h[1]
		case ":path":
			c.path = h[1]
		case ":method":
			c.method = h[1]
		case "content-type":
			c.contentType = h[1]
		case "content-encoding":
			encoding = h[1]
		case "connection":
			connection = h[1]
		case "upgrade":
			upgrade = h[1]
		case "x-request-id":
			c.requestID = h[1]
		}
	}
	c.headersEndStream = eos
	if c.requestID != "" {
		_ = proxywasm.SetProperty([]string{"x_request_id"}, []byte(c.requestID))
	}
	cfg, ok := s.root.rules.match(c.authority, c.RouteName, c.ClusterName)
	if !ok {
		return Continue
	}
	s.cfg, s.active = cfg, true
	c.readRequestBody = !eos && (p.OnRequestBody != nil || p.OnStreamingRequestBody != nil)
	c.readResponseBody = p.OnResponseBody != nil || p.OnStreamingResponseBody != nil
	c.streamRequest = p.OnStreamingRequestBody != nil
	c.streamResponse = p.OnStreamingResponseBody != nil
	// Bodies a plugin must not parse: binary, compressed, websocket.
	if isBinary(c.contentType, encoding) {
		c.readRequestBody = false
	}
	if strings.EqualFold(connection, "upgrade") && strings.EqualFold(upgrade, "websocket") {
		c.readRequestBody, c.readResponseBody = false, false
	}
	if p.OnRequestHeaders == nil {
		return Continue
	}
	if hdrs != nil {
		c.reqHeaders = hdrs
		defer func() { c.reqHeaders = nil }()
	}
	return p.OnRequestHeaders(c, cfg)
}

func isBinary(contentType, encoding string) bool {
	return strings.Contains(contentType, "octet-stream") || strings.Contains(contentType, "grpc") || encoding != ""
}

// readBody reads size bytes of the current body buffer; an empty buffer is
// an empty body, not an error.
func readBody(get func(int, int) ([]byte, error), size int) ([]byte, error) {
	if size <= 0 {
		size = math.MaxInt32
	}
	b, err := get(0, size)
	if errors.Is(err, types.ErrorStatusNotFound) {
		return []byte{}, nil
	}
	return b, err
}

// sameSlice reports whether out is chunk itself, unchanged in length.
func sameSlice(out, chunk []byte) bool {
	return len(out) == len(chunk) && (len(out) == 0 || &out[0] == &chunk[0])
}

// OnHttpRequestBody runs the streaming callback per chunk, or buffers until
// end of stream and runs the buffered callback once.
func (s *stream[C]) OnHttpRequestBody(size int, eos bool) (action Action) {
	if !s.active || !s.ctx.readRequestBody {
		return Continue
	}
	s.begin(PhaseRequestBody)
	defer s.guard("request body", &action)
	p, c := s.root.p, s.ctx
	if p.OnStreamingRequestBody != nil && c.streamRequest {
		chunk, err := readBody(proxywasm.GetHttpRequestBody, size)
		if err != nil {
			c.Log().Warnf("read request body chunk: %v", err)
			return Continue
		}
		if out := p.OnStreamingRequestBody(c, s.cfg, chunk, eos); !sameSlice(out, chunk) {
			if err := proxywasm.ReplaceHttpRequestBody(out); err != nil {
				c.Log().Warnf("replace request body chunk: %v", err)
			}
		}
		return Continue
	}
	if p.OnRequestBody == nil {
		return Continue
	}
	if !eos {
		s.pendingReq = true
		return Pause
	}
	s.pendingReq = false
	body, err := readBody(proxywasm.GetHttpRequestBody, size)
	if err != nil {
		c.Log().Warnf("read request body: %v", err)
		return Continue
	}
	return p.OnRequestBody(c, s.cfg, body)
}

// OnHttpRequestTrailers completes a buffered request body: with trailers
// the last body chunk is not marked end of stream, so the buffered
// callback runs here.
func (s *stream[C]) OnHttpRequestTrailers(int) (action Action) {
	if !s.active || !s.pendingReq {
		return Continue
	}
	s.pendingReq = false
	s.begin(PhaseRequestBody)
	defer s.guard("request body", &action)
	body, err := readBody(proxywasm.GetHttpRequestBody, 0)
	if err != nil {
		s.ctx.Log().Warnf("read request body: %v", err)
		return Continue
	}
	return s.root.p.OnRequestBody(s.ctx, s.cfg, body)
}

// OnHttpResponseHeaders decides whether the response body is read and runs
// OnResponseHeaders.
func (s *stream[C]) OnHttpResponseHeaders(_ int, eos bool) (action Action) {
	if !s.active {
		return Continue
	}
	s.begin(PhaseResponseHeaders)
	defer s.guard("response headers", &action)
	p, c := s.root.p, s.ctx
	if eos {
		c.readResponseBody = false
	}
	if c.readResponseBody {
		ct, err := proxywasm.GetHttpResponseHeader("content-type")
		enc, _ := proxywasm.GetHttpResponseHeader("content-encoding")
		if isBinary(ct, enc) {
			c.readResponseBody = false
		}
		c.respCT.value, c.respCT.ok, c.respCT.known = ct, err == nil, true
		defer func() { c.respCT.known = false }()
	}
	if p.OnResponseHeaders == nil {
		return Continue
	}
	return p.OnResponseHeaders(c, s.cfg)
}

// OnHttpResponseBody is OnHttpRequestBody for the response.
func (s *stream[C]) OnHttpResponseBody(size int, eos bool) (action Action) {
	if !s.active || !s.ctx.readResponseBody {
		return Continue
	}
	s.begin(PhaseResponseBody)
	defer s.guard("response body", &action)
	p, c := s.root.p, s.ctx
	if p.OnStreamingResponseBody != nil && c.streamResponse {
		chunk, err := readBody(proxywasm.GetHttpResponseBody, size)
		if err != nil {
			c.Log().Warnf("read response body chunk: %v", err)
			return Continue
		}
		if out := p.OnStreamingResponseBody(c, s.cfg, chunk, eos); !sameSlice(out, chunk) {
			if err := proxywasm.ReplaceHttpResponseBody(out); err != nil {
				c.Log().Warnf("replace response body chunk: %v", err)
				return Continue
			}
		}
		if c.pauseStreamingResponse {
			return StopNoBuffer
		}
		return Continue
	}
	if p.OnResponseBody == nil {
		return Continue
	}
	if !eos {
		s.pendingResp = true
		return Pause
	}
	s.pendingResp = false
	body, err := readBody(proxywasm.GetHttpResponseBody, size)
	if err != nil {
		c.Log().Warnf("read response body: %v", err)
		return Continue
	}
	return p.OnResponseBody(c, s.cfg, body)
}

// OnHttpResponseTrailers completes a buffered response body.
func (s *stream[C]) OnHttpResponseTrailers(int) (action Action) {
	if !s.active || !s.pendingResp {
		return Continue
	}
	s.pendingResp = false
	s.begin(PhaseResponseBody)
	defer s.guard("response body", &action)
	body, err := readBody(proxywasm.GetHttpResponseBody, 0)
	if err != nil {
		s.ctx.Log().Warnf("read response body: %v", err)
		return Continue
	}
	return s.root.p.OnResponseBody(s.ctx, s.cfg, body)
}

// OnHttpStreamDone runs OnStreamDone.
func (s *stream[C]) OnHttpStreamDone() {
	if !s.active || s.root.p.OnStreamDone == nil {
		return
	}
	s.begin(PhaseDone)
	var ignored Action
	defer s.guard("stream done", &ignored)
	s.root.p.OnStreamDone(s.ctx, s.cfg)
}
