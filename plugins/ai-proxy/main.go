// Command ai-proxy is a Proxy-Wasm plugin that puts an OpenAI-compatible
// API (and Anthropic's /v1/messages) in front of an LLM provider: it
// rewrites :authority, :path and the auth header for the configured
// provider, maps model names, translates OpenAI chat requests to
// Anthropic's Messages API and the answers (JSON and SSE) back, rotates API
// tokens with health-checked failover, and gives clients provider errors
// in OpenAI's error shape. See README.md; the behaviour is
// shared/spec/plugins-C.md §6, with the differences listed there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-proxy"

// Response-code details (and error codes) of the plugin's local replies.
const (
	detailInvalidJSON    = pluginName + ".invalid_json"
	detailBadRequest     = pluginName + ".invalid_request"
	detailUnsupportedAPI = pluginName + ".unsupported_api"
	detailProcRespFailed = pluginName + ".proc_resp_body_failed"
)

// Headers the plugin reads or writes.
const (
	hdrOriginalHost = "x-envoy-original-host"
	hdrOriginalPath = "x-envoy-original-path"
	hdrConsumer     = "x-mse-consumer"
)

// maxBody bounds buffered request and response bodies (§6.9: 100 MiB).
const maxBody = 100 << 20

// request is what the plugin remembers about one request.
type request struct {
	p        *providerConfig
	api      apiName
	resource string // ID path for apiOpenAIResource
	query    string // the client's query string, with '?'
	// claudeClient: the client spoke Anthropic's /v1/messages to a
	// provider without it; requests and answers are converted.
	claudeClient bool
	// toClaude: an OpenAI chat request goes to Anthropic's Messages API.
	toClaude      bool
	stream        bool
	token         string
	originalModel string
	model         string
	// What the provider was sent, for retries.
	sentPath string
	sentBody []byte
	tried    []string
	retries  int
	replied  bool // the plugin answered (a successful retry)
	// Response state.
	status      int
	errorBody   bool // a provider error is being normalised
	translating bool // the answer body is converted
	sse         pdk.SSEParser
	claudeOut   *claudeToOpenAIStream
	openaiOut   *openAIToClaudeStream
}

const keyRequest = "ai-proxy.request"

func requestOf(ctx *pdk.Context) *request {
	v, _ := ctx.Value(keyRequest)
	r, _ := v.(*request)
	return r
}

var plugin = pdk.Plugin[*config]{
	Name:                    pluginName,
	Parse:                   parseConfig,
	OnRequestHeaders:        onRequestHeaders,
	OnRequestBody:           onRequestBody,
	OnResponseHeaders:       onResponseHeaders,
	OnResponseBody:          onResponseBody,
	OnStreamingResponseBody: onStreamingResponseBody,
}

func init() { registerWithHealthChecks(&plugin) }
func main() {}

func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	p := cfg.active
	if p == nil {
		ctx.DontReadRequestBody()
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	ctx.DisableReroute()
	_ = ctx.RemoveRequestHeader("accept-encoding")

	origHost, origPath := ctx.Host(), ctx.Path()
	path, query := splitQuery(origPath)
	if p.BasePath != "" && p.BasePathHandling == basePathRemovePrefix {
		path = strings.TrimPrefix(path, p.BasePath)
		if path == "" {
			path = "/"
		}
	}
	r := &request{p: p, query: query}
	ctx.SetValue(keyRequest, r)
	r.api, r.resource = detectAPI(path)
	if p.Protocol == protocolOpenAI && p.spec.family != familyGeneric && r.api == apiMessages && !p.nativeMessages() {
		r.claudeClient, r.api = true, apiChat
	}
	r.toClaude = p.spec.family == familyClaude && p.Protocol == protocolOpenAI && r.api == apiChat
	r.token = chooseToken(ctx, p, r.api)

	passThrough := p.Protocol == protocolOriginal || p.spec.family == familyGeneric || r.api == ""
	newPath := path + query
	var body bodyInfo
	if !passThrough {
		up, ok := p.upstreamPath(r.api, r.resource, "")
		switch {
		case ok:
			newPath = withQuery(up, query)
		case p.spec.family == familyAzure && azureDeploymentAPIs[r.api] && body.has(ctx):
			// The deployment is the mapped model: the path is set once
			// the body is read.
		default:
			removeOriginals(ctx, false, false)
			ctx.DontReadRequestBody()
			ctx.DontReadResponseBody()
			return ctx.ReplyError(404, "not_found_error", detailUnsupportedAPI,
				"provider type "+strconv.Quote(p.Type)+" does not serve "+string(r.api)+" ("+path+")")
		}
	}
	if p.ProviderBasePath != "" && !strings.HasPrefix(newPath, p.ProviderBasePath) {
		newPath = p.ProviderBasePath + newPath
	}
	if p.BasePath != "" && p.BasePathHandling == basePathPrepend && !strings.HasPrefix(newPath, p.BasePath) {
		newPath = p.BasePath + newPath
	}
	setRequestTarget(ctx, r, newPath, origHost, origPath)

	if passThrough {
		// Provider answers (errors included) pass through as the provider
		// wrote them; failover still counts the status.
		ctx.DontReadRequestBody()
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	r.sentPath = newPath
	if body.has(ctx) {
		if body.length {
			_ = ctx.RemoveRequestHeader("content-length")
		}
		// ctx.SetRequestBodyBufferLimit(maxBody), without formatting the
		// number for every request.
		_ = ctx.SetProperty("set_decoder_buffer_limit", maxBodyText)
		return pdk.Pause
	}
	return pdk.Continue
}

// maxBodyText is maxBody as the buffer-limit properties take it.
var maxBodyText = []byte(strconv.Itoa(maxBody))

// removeOriginals removes the client's x-envoy-original-host and -path,
// except those setRequestTarget replaces anyway (replacing drops every
// value the client sent, so removing first is a host call for nothing).
func removeOriginals(ctx *pdk.Context, hostSet, pathSet bool) {
	if !hostSet {
		_ = ctx.RemoveRequestHeader(hdrOriginalHost)
	}
	if !pathSet {
		_ = ctx.RemoveRequestHeader(hdrOriginalPath)
	}
}

// setRequestTarget writes :authority, :path and the auth headers, and keeps
// the client's originals in x-envoy-original-host/-path.
func setRequestTarget(ctx *pdk.Context, r *request, newPath, origHost, origPath string) {
	p := r.p
	hostSet := p.host != "" && p.host != origHost
	pathSet := newPath != origPath
	removeOriginals(ctx, hostSet, pathSet)
	if hostSet {
		_ = ctx.SetRequestHeader(":authority", p.host)
		_ = ctx.SetRequestHeader(hdrOriginalHost, origHost)
	}
	if pathSet {
		_ = ctx.SetRequestHeader(":path", newPath)
		_ = ctx.SetRequestHeader(hdrOriginalPath, origPath)
	}
	token := r.token
	if token == "" && p.Type == "openai" {
		// No configured tokens: the client's own key goes on as Bearer.
		for _, h := range []string{"x-api-key", "x-authorization", "authorization"} {
			if v, ok := ctx.RequestHeader(h); ok && v != "" {
				token = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(v, "Bearer "), "bearer "))
				break
			}
		}
	}
	set, remove := p.authHeaders(token)
	for _, h := range remove {
		_ = ctx.RemoveRequestHeader(h)
	}
	for _, h := range set {
		_ = ctx.SetRequestHeader(h[0], h[1])
	}
}

// bodyInfo is what the request headers say about the body, read from the
// host once.
type bodyInfo struct {
	known, body bool
	// length: the request has a content-length header.
	length bool
}

// has reports whether the request has a body to read.
func (b *bodyInfo) has(ctx *pdk.Context) bool {
	if b.known {
		return b.body
	}
	b.known = true
	if v, ok := ctx.RequestHeader("content-length"); ok {
		b.length = true
		b.body = strings.TrimSpace(v) != "0"
		return b.body
	}
	_, b.body = ctx.RequestHeader("transfer-encoding")
	return b.body
}

func onRequestBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	r := requestOf(ctx)
	if r == nil {
		return pdk.Continue
	}
	p := r.p
	if len(body) == 0 && r.api != apiChat && r.api != apiMessages {
		return pdk.Continue
	}
	if ct := ctx.ContentType(); ct != "" && !strings.Contains(ct, "json") {
		// multipart uploads (audio, image edits, files) go on untouched.
		if !r.setPathFromModel(ctx, "") {
			return ctx.ReplyError(400, "invalid_request_error", detailBadRequest,
				"Azure OpenAI needs a deployment for this request: put it in azureServiceUrl (…/openai/deployments/NAME?api-version=…)")
		}
		return pdk.Continue
	}
	if !gjson.ValidBytes(body) {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidJSON, "the request body is not valid JSON: "+jsonProblem(body))
	}
	if !pdk.IsJSONObject(body) {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidJSON, "the request body must be a JSON object")
	}
	var err error
	if r.claudeClient {
		body, err = claudeRequestToOpenAI(body)
		if err != nil {
			return ctx.Reply(claudeErrorReply(400, "invalid_request_error", detailBadRequest, err.Error()))
		}
	}
	f := topFieldsOf(body)
	r.stream = f.stream.Bool()
	r.originalModel = f.model.String()
	r.model = p.mapping.Map(r.originalModel)
	edited := false // body no longer matches f's offsets
	if (r.api == apiChat || r.api == apiCompletions) && p.spec.family != familyClaude {
		if r.stream && !f.streamOptions.Get("include_usage").Exists() {
			body, _ = sjson.SetBytes(body, "stream_options.include_usage", true)
			edited = true
		}
	}
	if r.api == apiChat && p.spec.family != familyAzure && pdk.MayContainJSONString(body, `"developer"`) {
		body = developerToSystem(body)
		edited = true
	}
	switch {
	case r.toClaude:
		if r.model == "" {
			return ctx.ReplyError(400, "invalid_request_error", detailBadRequest, "missing model in request")
		}
		body, err = openAIToClaudeRequest(body, r.model)
		if err != nil {
			return ctx.ReplyError(400, "invalid_request_error", detailBadRequest, err.Error())
		}
	case r.model != r.originalModel:
		model := f.model
		if edited {
			model = gjson.GetBytes(body, "model")
		}
		body = setStringValue(body, model, "model", r.model)
	}
	if r.stream {
		_ = ctx.SetRequestHeader("accept", "text/event-stream")
	}
	if !r.setPathFromModel(ctx, r.model) {
		return ctx.ReplyError(400, "invalid_request_error", detailBadRequest,
			"missing model in request (Azure OpenAI needs it to choose the deployment)")
	}
	r.sentBody = body
	if err := ctx.ReplaceRequestBody(body); err != nil {
		ctx.Log().Warnf("replace request body: %v", err)
	}
	return pdk.Continue
}

// setPathFromModel sets :path for Azure deployments chosen by model (a
// no-op for other providers). false: no deployment could be chosen.
func (r *request) setPathFromModel(ctx *pdk.Context, model string) bool {
	p := r.p
	if p.spec.family != familyAzure || !azureDeploymentAPIs[r.api] || p.azure.deployment != "" || p.azure.fullPath != "" {
		return true
	}
	up, ok := p.upstreamPath(r.api, r.resource, model)
	if !ok {
		return false
	}
	newPath := withQuery(up, r.query)
	if p.ProviderBasePath != "" && !strings.HasPrefix(newPath, p.ProviderBasePath) {
		newPath = p.ProviderBasePath + newPath
	}
	_ = ctx.SetRequestHeader(":path", newPath)
	_ = ctx.SetRequestHeader(hdrOriginalPath, ctx.Path())
	r.sentPath = newPath
	return true
}

// jsonProblem describes why body is not valid JSON.
func jsonProblem(body []byte) string {
	if len(strings.TrimSpace(string(body))) == 0 {
		return "the body is empty"
	}
	_, err := pdk.DecodeConfigWith[any](body, pdk.DecodeOptions{AllowUnknownFields: true})
	if err != nil {
		return strings.TrimPrefix(err.Error(), "not valid JSON: ")
	}
	return "unexpected input"
}

// developerToSystem renames the role "developer" to "system" (providers
// other than OpenAI and Azure do not know it).
func developerToSystem(body []byte) []byte {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return body
	}
	for i, m := range msgs.Array() {
		if m.Get("role").String() == "developer" {
			body, _ = sjson.SetBytes(body, "messages."+strconv.Itoa(i)+".role", "system")
		}
	}
	return body
}

func onResponseHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	r := requestOf(ctx)
	if r == nil || r.replied || ctx.RepliedLocally() {
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	if r.plainAnswer() {
		// The common case: an OpenAI-compatible answer the plugin neither
		// translates nor counts. Only an error status needs the checks
		// below; a success leaves the body alone whatever produced it.
		statusText, _ := ctx.ResponseHeader(":status")
		if status, _ := strconv.Atoi(statusText); status >= 200 && status <= 299 {
			r.status = status
			ctx.DontReadResponseBody()
			return pdk.Continue
		}
	}
	if d, ok := ctx.Property("response", "code_details"); ok && d != "via_upstream" {
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	statusText, _ := ctx.ResponseHeader(":status")
	r.status, _ = strconv.Atoi(statusText)
	recordOutcome(ctx, r.p, r.token, statusText)
	passThrough := r.p.Protocol == protocolOriginal || r.p.spec.family == familyGeneric || r.api == ""
	if passThrough {
		return pdk.Continue
	}
	if r.status < 200 || r.status > 299 {
		r.errorBody = true
		ctx.BufferResponseBody()
		ctx.SetResponseBodyBufferLimit(maxBody)
		_ = ctx.RemoveResponseHeader("content-length")
		if retryOn(r, statusText) && startRetry(ctx, r) {
			return pdk.StopAllWatermark
		}
		return pdk.Continue
	}
	if !r.toClaude && !r.claudeClient {
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	r.translating = true
	_ = ctx.RemoveResponseHeader("content-length")
	ct, _ := ctx.ResponseHeader("content-type")
	if strings.Contains(ct, "text/event-stream") {
		if r.toClaude {
			r.claudeOut = newClaudeToOpenAIStream(r.model)
		}
		if r.claudeClient {
			r.openaiOut = newOpenAIToClaudeStream(r.originalModel)
		}
		return pdk.Continue
	}
	ctx.BufferResponseBody()
	ctx.SetResponseBodyBufferLimit(maxBody)
	return pdk.Continue
}

// plainAnswer reports a request whose successful answer the plugin leaves
// alone and whose status it does not count: no translation, no
// pass-through (which keeps reading nothing), no failover.
func (r *request) plainAnswer() bool {
	p := r.p
	return !r.toClaude && !r.claudeClient && !failoverOn(p) && r.api != "" &&
		p.Protocol != protocolOriginal && p.spec.family != familyGeneric
}

func onResponseBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	r := requestOf(ctx)
	if r == nil {
		return pdk.Continue
	}
	var out []byte
	switch {
	case r.errorBody:
		if r.claudeClient {
			out = claudeErrorBody(r.status, body)
		} else {
			out = openAIErrorBody(r.status, body)
		}
		_ = ctx.SetResponseHeader("content-type", "application/json")
	case r.translating:
		var err error
		out = body
		if r.toClaude {
			out, err = claudeResponseToOpenAI(out, r.model)
		}
		if err == nil && r.claudeClient {
			out, err = openAIResponseToClaude(out, r.originalModel)
		}
		if err != nil {
			ctx.Log().Warnf("translate response: %v", err)
			out = openAIErrorBody(502, []byte(err.Error()))
			if r.claudeClient {
				out = claudeErrorBody(502, []byte(err.Error()))
			}
			_ = ctx.SetResponseHeader(":status", "502")
		}
		_ = ctx.SetResponseHeader("content-type", "application/json")
	default:
		return pdk.Continue
	}
	if err := ctx.ReplaceResponseBody(out); err != nil {
		ctx.Log().Warnf("replace response body: %v", err)
	}
	return pdk.Continue
}

func onStreamingResponseBody(ctx *pdk.Context, cfg *config, chunk []byte, eos bool) []byte {
	r := requestOf(ctx)
	if r == nil || !r.translating {
		return chunk
	}
	events := r.sse.Feed(chunk)
	if eos {
		events = append(events, r.sse.Flush()...)
	}
	var out []byte
	if r.claudeOut != nil {
		out = r.claudeOut.events(events, eos)
	} else {
		for _, ev := range events {
			if ev.Data == nil {
				continue
			}
			out = append(out, "data: "...)
			out = append(out, ev.Data...)
			out = append(out, "\n\n"...)
		}
	}
	if r.openaiOut != nil {
		var p pdk.SSEParser
		evs := p.Feed(out)
		out = r.openaiOut.events(evs, eos)
	}
	if out == nil {
		out = []byte{}
	}
	return out
}
