package pdk

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// This file is the per-request state a plugin sees: the request's cached
// pseudo-headers, its phase, body-reading switches, user values and
// attributes.

// Action is what a header or body callback tells the host to do next
// (Proxy-Wasm action values, host.md §2.6).
type Action = types.Action

// Actions for header and body callbacks.
const (
	// Continue passes headers or data on.
	Continue = types.ActionContinue
	// Pause holds the headers at this plugin while body chunks still
	// arrive (ABI 0.2.100 StopIteration), or keeps a body chunk buffered.
	Pause = types.ActionPause
	// StopAllWatermark holds headers and body (with back-pressure) until
	// the plugin resumes the stream; return it while a callout runs.
	StopAllWatermark = types.HeaderStopAllIterationAndWatermark
	// StopNoBuffer swallows a body chunk (the plugin emits data itself).
	StopNoBuffer = types.DataStopIterationNoBuffer
)

// Phase is the stage of a request a callback runs in.
type Phase int

// The phases, in order.
const (
	PhaseRequestHeaders Phase = iota + 1
	PhaseRequestBody
	PhaseResponseHeaders
	PhaseResponseBody
	PhaseDone
)

var phaseNames = [...]string{"", "request headers", "request body", "response headers", "response body", "stream done"}

// String names the phase.
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown phase"
}

// Context is one request as one plugin sees it. The kit creates it for
// every stream and passes it to every callback; it stays valid in callout
// callbacks issued for the request. It is not safe for concurrent use (the
// guest is single-threaded).
type Context struct {
	id     uint32
	plugin *pluginMeta
	phase  Phase

	scheme, authority, path, method string
	contentType, requestID          string

	routeName, clusterName   string
	routeKnown, clusterKnown bool

	readRequestBody, readResponseBody bool
	streamRequest, streamResponse     bool
	pauseStreamingResponse            bool
	repliedLocally                    bool
	// headersEndStream: the request headers ended the stream (no body).
	headersEndStream bool

	// reqHeaders: the request headers while the request-headers callback
	// runs and the plugin has not changed them (RequestHeader), else nil.
	reqHeaders [][2]string
	// respCT: the response content-type the kit read, while the
	// response-headers callback runs and the plugin has not changed the
	// response headers (known).
	respCT struct {
		value     string
		ok, known bool
	}

	values map[string]any
	attrs  map[string]any
	usage  *UsageTracker
	// lastLog is what WriteAttributesToLog wrote last, to merge over it
	// again without decoding it when the property still holds it.
	lastLog *writtenLog
}

func newContext(id uint32, plugin *pluginMeta) *Context {
	return &Context{id: id, plugin: plugin}
}

// ID returns the Proxy-Wasm context id of the request's stream.
func (c *Context) ID() uint32 { return c.id }

// Phase returns the phase of the callback running now, or of the callback
// that issued the callout whose response runs now.
func (c *Context) Phase() Phase { return c.phase }

// Scheme returns the request's :scheme, cached at request headers (Envoy
// does not let plugins read request headers after they were forwarded).
func (c *Context) Scheme() string { return c.scheme }

// Host returns the request's :authority as the client sent it, port
// included.
func (c *Context) Host() string { return c.authority }

// Path returns the request's :path, query included.
func (c *Context) Path() string { return c.path }

// Method returns the request's :method.
func (c *Context) Method() string { return c.method }

// ContentType returns the request's content-type header.
func (c *Context) ContentType() string { return c.contentType }

// RequestID returns the request's x-request-id header ("" when absent).
func (c *Context) RequestID() string { return c.requestID }

// Log returns a logger whose lines carry this request's id.
func (c *Context) Log() Logger { return Logger{plugin: c.plugin, requestID: c.requestID} }

// RouteName returns the route_name property (the matched route), asking the
// host at most once per request.
func (c *Context) RouteName() string {
	if !c.routeKnown {
		c.routeName, c.routeKnown = propertyString("route_name"), true
	}
	return c.routeName
}

// ClusterName returns the cluster_name property (the upstream cluster, e.g.
// outbound|443||llm.dns), asking the host at most once per request.
func (c *Context) ClusterName() string {
	if !c.clusterKnown {
		c.clusterName, c.clusterKnown = propertyString("cluster_name"), true
	}
	return c.clusterName
}

// SetValue stores a per-request value for later callbacks.
func (c *Context) SetValue(key string, v any) {
	if c.values == nil {
		c.values = map[string]any{}
	}
	c.values[key] = v
}

// Value returns a value stored with SetValue.
func (c *Context) Value(key string) (any, bool) {
	v, ok := c.values[key]
	return v, ok
}

// StringValue returns the string stored under key, or def.
func (c *Context) StringValue(key, def string) string {
	if s, ok := c.values[key].(string); ok {
		return s
	}
	return def
}

// DontReadRequestBody skips the request body callbacks for this request;
// the body then streams through untouched.
func (c *Context) DontReadRequestBody() { c.readRequestBody = false }

// DontReadResponseBody skips the response body callbacks for this request.
func (c *Context) DontReadResponseBody() { c.readResponseBody = false }

// BufferRequestBody switches a plugin that has both request body callbacks
// to the buffered one for this request.
func (c *Context) BufferRequestBody() { c.streamRequest = false }

// BufferResponseBody switches a plugin that has both response body
// callbacks to the buffered one for this request (streaming is the
// default).
func (c *Context) BufferResponseBody() { c.streamResponse = false }

// NeedPauseStreamingResponse makes the kit swallow each response chunk
// after the streaming callback (StopNoBuffer): the plugin emits the data
// itself with InjectResponseData.
func (c *Context) NeedPauseStreamingResponse() { c.pauseStreamingResponse = true }

// InjectResponseData sends data towards the client from this plugin's
// position (Higress's proxy_inject_encoded_data_to_filter_chain); eos ends
// the response.
func (c *Context) InjectResponseData(data []byte, eos bool) error {
	return proxywasm.InjectEncodedDataToFilterChain(data, eos)
}

// ResumeRequest continues a request this plugin paused (after a callout).
// A failure is logged and returned.
func (c *Context) ResumeRequest() error {
	err := proxywasm.ResumeHttpRequest()
	if err != nil {
		c.Log().Warnf("resume request: %v", err)
	}
	return err
}

// ResumeResponse continues a response this plugin paused.
func (c *Context) ResumeResponse() error {
	err := proxywasm.ResumeHttpResponse()
	if err != nil {
		c.Log().Warnf("resume response: %v", err)
	}
	return err
}

// resume continues the direction of the phase p.
func (c *Context) resume(p Phase) {
	if p == PhaseResponseHeaders || p == PhaseResponseBody {
		_ = c.ResumeResponse()
		return
	}
	_ = c.ResumeRequest()
}

// RepliedLocally reports whether this plugin sent a local reply for the
// request. The reply runs through this plugin's own response callbacks (as
// in Envoy), which can use this to leave it alone.
func (c *Context) RepliedLocally() bool { return c.repliedLocally }
