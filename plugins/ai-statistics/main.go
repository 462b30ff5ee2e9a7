// Command ai-statistics is a Proxy-Wasm plugin that observes LLM traffic
// without changing it: it extracts the model and token usage of OpenAI
// (and Anthropic, Gemini) responses, streaming or not, measures the time to
// first token and the total time, counts them per route, cluster, model and
// consumer, writes them and user-configured attributes into the shared
// ai_log property and sets trace span attributes. See README.md; the
// behaviour is shared/spec/plugins-A.md §6, with the fixes listed there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-statistics"

// Value sources of an attribute (Higress's names).
const (
	sourceFixed           = "fixed_value"
	sourceRequestHeader   = "request_header"
	sourceRequestBody     = "request_body"
	sourceResponseHeader  = "response_header"
	sourceResponseBody    = "response_body"
	sourceResponseStreams = "response_streaming_body"
)

// Rules combining the values of a streamed response's events.
const (
	ruleFirst   = "first"
	ruleReplace = "replace"
	ruleAppend  = "append"
)

// Built-in attribute keys (§6.2.1).
const (
	keyQuestion           = "question"
	keySystem             = "system"
	keyAnswer             = "answer"
	keyReasoning          = "reasoning"
	keyToolCalls          = "tool_calls"
	keyReasoningTokens    = "reasoning_tokens"
	keyCachedTokens       = "cached_tokens"
	keyInputTokenDetails  = "input_token_details"
	keyOutputTokenDetails = "output_token_details"
)

// Attributes the plugin writes itself (§6.5).
const (
	attrAPI               = "api"
	attrSessionID         = "session_id"
	attrChatRound         = "chat_round"
	attrResponseType      = "response_type"
	attrChatID            = "chat_id"
	attrFirstTokenLatency = "llm_first_token_duration"
	attrServiceDuration   = "llm_service_duration"
)

// Span attributes (trace_span_tag.<name>).
const (
	spanKind         = "gen_ai.span.kind"
	spanRequestModel = "gen_ai.request.model"
	spanModelName    = "gen_ai.model_name"
	spanInputTokens  = "gen_ai.usage.input_tokens"
	spanOutputTokens = "gen_ai.usage.output_tokens"
	spanTotalTokens  = "gen_ai.usage.total_tokens"
)

// Defaults of value_length_limit (the code's, §6.2).
const (
	defaultValueLengthLimit      = 32000
	defaultFullPresetLimit       = 10485760
	defaultLightweightPresetLimt = 4000
)

// requestBodyLimit is the request-body buffer limit the plugin raises to.
const requestBodyLimit = 100 << 20

// consumerHeader names the consumer an auth plugin identified.
const consumerHeader = "x-mse-consumer"

// sessionHeaders are tried, in order, when session_id_header is unset or
// absent from the request.
var sessionHeaders = []string{"x-openclaw-session-key", "x-clawdbot-session-key", "x-moltbot-session-key", "x-agent-session"}

// now is the clock (tests replace it).
var now = time.Now

// attribute is one entry of attributes.
type attribute struct {
	Key                string `json:"key"`
	ValueSource        string `json:"value_source"`
	Value              string `json:"value"`
	DefaultValue       string `json:"default_value"`
	Rule               string `json:"rule"`
	ApplyToLog         bool   `json:"apply_to_log"`
	ApplyToSpan        bool   `json:"apply_to_span"`
	TraceSpanKey       string `json:"trace_span_key"`
	AsSeparateLogField bool   `json:"as_separate_log_field"`
}

// config is the plugin configuration (Higress's field names).
type config struct {
	UseDefaultAttributes         bool        `json:"use_default_attributes"`
	UseDefaultResponseAttributes bool        `json:"use_default_response_attributes"`
	Attributes                   []attribute `json:"attributes"`
	DisableOpenAIUsage           bool        `json:"disable_openai_usage"`
	ValueLengthLimit             *int        `json:"value_length_limit"`
	EnablePathSuffixes           *[]string   `json:"enable_path_suffixes"`
	EnableContentTypes           []string    `json:"enable_content_types"`
	SessionIDHeader              string      `json:"session_id_header"`

	// Derived at Validate.
	attrs          []attribute // the effective list (a preset or Attributes)
	limit          int
	pathSuffixes   []string // nil: every path
	contentTypes   []string // nil: every content type
	needReqBody    bool
	bufferStreamed bool
}

var validSources = []string{sourceFixed, sourceRequestHeader, sourceRequestBody, sourceResponseHeader, sourceResponseBody, sourceResponseStreams}

// Validate checks the attributes and works out the effective settings.
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	for i, a := range c.Attributes {
		field := fmt.Sprintf("attributes[%d]", i)
		if strings.TrimSpace(a.Key) == "" {
			errs = append(errs, pdk.Errorf(field+".key", "must not be empty (it names the value in ai_log and spans)"))
		}
		switch a.Rule {
		case "", ruleFirst, ruleReplace, ruleAppend:
		default:
			errs = append(errs, pdk.Errorf(field+".rule", "value of rule must be one of [nil, first, replace, append], not %q", a.Rule))
		}
		if a.ValueSource != "" && !contains(validSources, a.ValueSource) {
			errs = append(errs, pdk.Errorf(field+".value_source", "%q is not a value source (one of %s)", a.ValueSource, strings.Join(validSources, ", ")))
		}
		if a.ValueSource != "" && a.ValueSource != sourceFixed && a.Value == "" {
			errs = append(errs, pdk.Errorf(field+".value", "must name the header or the GJSON path to read for value_source %s", a.ValueSource))
		}
	}
	if c.ValueLengthLimit != nil && *c.ValueLengthLimit <= 0 {
		errs = append(errs, pdk.Errorf("value_length_limit", "must be positive, not %d", *c.ValueLengthLimit))
	}
	if len(errs) > 0 {
		return errs
	}

	preset := c.UseDefaultAttributes || c.UseDefaultResponseAttributes
	switch {
	case c.UseDefaultAttributes:
		c.attrs, c.limit = fullPreset(), defaultFullPresetLimit
	case c.UseDefaultResponseAttributes:
		c.attrs, c.limit = lightweightPreset(), defaultLightweightPresetLimt
	default:
		c.attrs, c.limit = c.Attributes, defaultValueLengthLimit
	}
	if c.ValueLengthLimit != nil {
		c.limit = *c.ValueLengthLimit
	}
	switch {
	case c.EnablePathSuffixes != nil:
		c.pathSuffixes = allOrList(*c.EnablePathSuffixes)
	case preset:
		c.pathSuffixes = []string{"/completions", "/messages"}
	}
	c.contentTypes = allOrList(c.EnableContentTypes)
	for _, a := range c.attrs {
		if a.ValueSource == sourceRequestBody || (a.ValueSource == "" && (a.Key == keyQuestion || a.Key == keySystem)) {
			c.needReqBody = true
		}
		if a.ValueSource == sourceResponseStreams || (a.ValueSource == "" && (a.Key == keyAnswer || a.Key == keyReasoning || a.Key == keyToolCalls)) {
			c.bufferStreamed = true
		}
	}
	return nil
}

// allOrList returns nil (everything) for an empty list or one holding "*".
func allOrList(l []string) []string {
	if len(l) == 0 || contains(l, "*") {
		return nil
	}
	return l
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func fullPreset() []attribute {
	return []attribute{
		{Key: "messages", ValueSource: sourceRequestBody, Value: "messages", ApplyToLog: true},
		{Key: keyQuestion, ApplyToLog: true},
		{Key: keySystem, ApplyToLog: true},
		{Key: keyAnswer, Rule: ruleAppend, ApplyToLog: true},
		{Key: keyReasoning, Rule: ruleAppend, ApplyToLog: true},
		{Key: keyToolCalls, ApplyToLog: true},
		{Key: keyReasoningTokens, ApplyToLog: true},
		{Key: keyCachedTokens, ApplyToLog: true},
		{Key: keyInputTokenDetails, ApplyToLog: true},
		{Key: keyOutputTokenDetails, ApplyToLog: true},
	}
}

func lightweightPreset() []attribute {
	return []attribute{
		{Key: keyReasoningTokens, ApplyToLog: true},
		{Key: keyCachedTokens, ApplyToLog: true},
		{Key: keyInputTokenDetails, ApplyToLog: true},
		{Key: keyOutputTokenDetails, ApplyToLog: true},
	}
}

// pathEnabled reports whether the request path (query stripped) ends with
// one of the suffixes (nil: every path).
func pathEnabled(path string, suffixes []string) bool {
	if len(suffixes) == 0 {
		return true
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, s := range suffixes {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

// contentTypeEnabled reports whether the content type contains one of the
// types (nil: every content type).
func contentTypeEnabled(ct string, types []string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if strings.Contains(ct, t) {
			return true
		}
	}
	return false
}

// isBuiltin reports whether key is a built-in attribute key.
func isBuiltin(key string) bool { return len(defaultSources(key)) > 0 }

// defaultSources returns where a built-in key is evaluated when it has no
// value_source (nil for other keys).
func defaultSources(key string) []string {
	switch key {
	case keyQuestion, keySystem:
		return []string{sourceRequestBody}
	case keyAnswer, keyReasoning, keyToolCalls, keyReasoningTokens, keyCachedTokens, keyInputTokenDetails, keyOutputTokenDetails:
		return []string{sourceResponseStreams, sourceResponseBody}
	}
	return nil
}

// shouldProcess reports whether attribute a is evaluated at source.
func shouldProcess(a attribute, source string) bool {
	if a.ValueSource != "" {
		return a.ValueSource == source
	}
	return contains(defaultSources(a.Key), source)
}

func parse(raw []byte) (*config, error) { return pdk.DecodeConfig[config](raw) }

var plugin = pdk.Plugin[*config]{
	Name:                    pluginName,
	Parse:                   parse,
	OnRequestHeaders:        onRequestHeaders,
	OnRequestBody:           onRequestBody,
	OnResponseHeaders:       onResponseHeaders,
	OnResponseBody:          onResponseBody,
	OnStreamingResponseBody: onStreamingResponseBody,
	OnStreamDone:            onStreamDone,
}

func init() { pdk.Register(&plugin) }

func main() {}

// request is the plugin's state for one request.
type request struct {
	skip       bool
	start      time.Time
	route      string
	cluster    string
	consumer   string
	firstToken bool
	streamBuf  []byte
	chatIDSet  bool
	typeSet    bool
	// logPending: attributes changed since ai_log was last written. The
	// request phase and usage updates mid-stream only mark it; ai_log is
	// written at the end of the response, or when the stream ends.
	logPending bool
}

const stateKey = "ai-statistics"

func state(ctx *pdk.Context) *request {
	if r, ok := ctx.Value(stateKey); ok {
		return r.(*request)
	}
	r := &request{}
	ctx.SetValue(stateKey, r)
	return r
}

func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	st := state(ctx)
	if !pathEnabled(ctx.Path(), cfg.pathSuffixes) {
		st.skip = true
		ctx.DontReadRequestBody()
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	ctx.DisableReroute()
	st.route, st.cluster = orDash(ctx.RouteName()), orDash(ctx.ClusterName())
	api := "-"
	if p, ok := apiOf(st.route); ok {
		api = p
		st.route = api
	}
	ctx.SetAttribute(attrAPI, api)
	st.start = now()
	st.consumer = "none"
	if c, _ := ctx.RequestHeader(consumerHeader); c != "" {
		st.consumer = c
	}
	ctx.SetRequestBodyBufferLimit(requestBodyLimit)
	if id := sessionID(ctx, cfg); id != "" {
		ctx.SetAttribute(attrSessionID, id)
	}
	_ = ctx.SetTraceTag(spanKind, "LLM")
	evaluate(ctx, cfg, sourceFixed, nil)
	evaluate(ctx, cfg, sourceRequestHeader, nil)
	return pdk.Continue
}

// apiOf returns the first three @-separated parts of a route name
// (<kind>@<name>@<version>@…); ok is false when it has fewer.
func apiOf(route string) (string, bool) {
	n := 0
	for i := 0; i < len(route); i++ {
		if route[i] != '@' {
			continue
		}
		if n++; n == 3 {
			return route[:i], true
		}
	}
	return route, n == 2
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sessionID(ctx *pdk.Context, cfg *config) string {
	if cfg.SessionIDHeader != "" {
		if v, _ := ctx.RequestHeader(cfg.SessionIDHeader); v != "" {
			return v
		}
	}
	for _, h := range sessionHeaders {
		if v, _ := ctx.RequestHeader(h); v != "" {
			return v
		}
	}
	return ""
}

func onRequestBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	st := state(ctx)
	if st.skip {
		return pdk.Continue
	}
	if cfg.needReqBody && len(body) > 0 {
		evaluate(ctx, cfg, sourceRequestBody, body)
	}
	model, round := readRequest(body)
	if model == "" {
		model = geminiModel(ctx.Path())
	}
	if model == "" {
		model = "UNKNOWN"
	}
	ctx.SetValue(pdk.ValueRequestModel, model)
	_ = ctx.SetTraceTag(spanRequestModel, model)
	ctx.SetAttribute(attrChatRound, round)
	st.logPending = true
	return pdk.Continue
}

// geminiModel reads the model of a …/models/<model>:generateContent path.
func geminiModel(path string) string {
	if !strings.Contains(path, "generateContent") && !strings.Contains(path, "streamGenerateContent") {
		return ""
	}
	i := strings.Index(path, "/models/")
	if i < 0 {
		return ""
	}
	m := path[i+len("/models/"):]
	if j := strings.IndexByte(m, ':'); j >= 0 {
		return m[:j]
	}
	return ""
}

// readRequest reads the model and the chat round (the user messages, or
// Gemini user contents) of a request body in one walk of its top level.
func readRequest(body []byte) (model string, round int64) {
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return "", 0
	}
	var msgs, contents gjson.Result
	modelSeen := false
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			if !modelSeen {
				model, modelSeen = v.String(), true
			}
		case "messages":
			if !msgs.Exists() {
				msgs = v
			}
		case "contents":
			if !contents.Exists() {
				contents = v
			}
		}
		return true
	})
	switch {
	case msgs.IsArray():
		msgs.ForEach(func(_, m gjson.Result) bool {
			if m.Get("role").String() == "user" {
				round++
			}
			return true
		})
	case contents.IsArray():
		contents.ForEach(func(_, c gjson.Result) bool {
			if r := c.Get("role"); !r.Exists() || r.String() == "user" {
				round++
			}
			return true
		})
	}
	return model, round
}

func onResponseHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	st := state(ctx)
	if st.skip {
		return pdk.Continue
	}
	ct, _ := ctx.ResponseHeader("content-type")
	if !contentTypeEnabled(ct, cfg.contentTypes) {
		st.skip = true
		ctx.DontReadResponseBody()
		return pdk.Continue
	}
	if !strings.Contains(ct, "text/event-stream") {
		ctx.BufferResponseBody()
	}
	evaluate(ctx, cfg, sourceResponseHeader, nil)
	return pdk.Continue
}

func onStreamingResponseBody(ctx *pdk.Context, cfg *config, chunk []byte, eos bool) []byte {
	st := state(ctx)
	if st.skip {
		return chunk
	}
	if cfg.bufferStreamed {
		st.streamBuf = append(st.streamBuf, chunk...)
	}
	if !st.typeSet {
		ctx.SetAttribute(attrResponseType, "stream")
		st.typeSet = true
	}
	if !st.chatIDSet {
		if i := bytes.IndexByte(chunk, '{'); i >= 0 {
			if id, ok := chatID(chunk[i:]); ok {
				ctx.SetAttribute(attrChatID, id)
				st.chatIDSet = true
			}
		}
	}
	if st.start.IsZero() {
		ctx.Log().Error("response without request start time: request headers were not processed")
		return chunk
	}
	if !st.firstToken && len(chunk) > 0 {
		st.firstToken = true
		ctx.SetAttribute(attrFirstTokenLatency, now().Sub(st.start).Milliseconds())
	}
	if !cfg.DisableOpenAIUsage {
		if u, changed := ctx.TrackUsage(chunk, eos); changed && u.TotalTokens > 0 {
			usageSpanTags(ctx, u)
			st.logPending = true
		}
	}
	if eos {
		ctx.SetAttribute(attrServiceDuration, now().Sub(st.start).Milliseconds())
		evaluate(ctx, cfg, sourceResponseStreams, st.streamBuf)
		st.streamBuf = nil
		writeLog(ctx, st)
		writeMetrics(ctx, cfg, st)
	}
	return chunk
}

func onResponseBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	st := state(ctx)
	if st.skip {
		return pdk.Continue
	}
	if st.start.IsZero() {
		ctx.Log().Error("response without request start time: request headers were not processed")
		return pdk.Continue
	}
	ctx.SetAttribute(attrServiceDuration, now().Sub(st.start).Milliseconds())
	ctx.SetAttribute(attrResponseType, "normal")
	if id, ok := chatID(body); ok {
		ctx.SetAttribute(attrChatID, id)
	}
	if !cfg.DisableOpenAIUsage {
		if u, changed := ctx.TrackUsage(body, true); changed && u.TotalTokens > 0 {
			usageSpanTags(ctx, u)
		}
	}
	evaluate(ctx, cfg, sourceResponseBody, body)
	writeLog(ctx, st)
	writeMetrics(ctx, cfg, st)
	return pdk.Continue
}

// onStreamDone writes ai_log when the response did not (no response body
// reached this plugin, or the stream ended early), so that the access log
// still gets the request's attributes and any usage seen.
func onStreamDone(ctx *pdk.Context, _ *config) {
	if st := state(ctx); !st.skip && st.logPending {
		writeLog(ctx, st)
	}
}

var chatIDPaths = []string{"id", "response.id", "responseId", "message.id"}

func chatID(body []byte) (string, bool) {
	for _, p := range chatIDPaths {
		if r := gjson.GetBytes(body, p); r.Exists() && r.String() != "" {
			return r.String(), true
		}
	}
	return "", false
}

func usageSpanTags(ctx *pdk.Context, u pdk.Usage) {
	_ = ctx.SetTraceTag(spanTotalTokens, strconv.FormatInt(u.TotalTokens, 10))
	_ = ctx.SetTraceTag(spanModelName, u.Model)
	_ = ctx.SetTraceTag(spanInputTokens, strconv.FormatInt(u.InputTokens, 10))
	_ = ctx.SetTraceTag(spanOutputTokens, strconv.FormatInt(u.OutputTokens, 10))
}

// writeLog merges the attributes into ai_log, with a debug dump first.
func writeLog(ctx *pdk.Context, st *request) {
	st.logPending = false
	if l := ctx.Log(); l.Enabled(pdk.LevelDebug) {
		b, _ := json.Marshal(ctx.Attributes())
		l.Debugf("[ai_log] attributes to be written: %s", b)
	}
	if err := ctx.WriteAILog(); err != nil {
		ctx.Log().Warnf("write ai_log: %v", err)
	}
}

// metricNames lists the token counters, in emission order.
var metricNames = []string{pdk.AttrInputToken, pdk.AttrOutputToken, pdk.AttrTotalToken}

// writeMetrics increments the per route/cluster/model/consumer counters
// (§6.4).
func writeMetrics(ctx *pdk.Context, cfg *config, st *request) {
	if cfg.DisableOpenAIUsage || st.route == "" || st.cluster == "" {
		return
	}
	mv, _ := ctx.Attribute(pdk.AttrModel)
	model, ok := mv.(string)
	if !ok {
		return
	}
	for _, k := range metricNames {
		if _, ok := ctx.Attribute(k); !ok {
			return
		}
	}
	prefix := "route." + st.route + ".upstream." + st.cluster + ".model." + model + ".consumer." + st.consumer + ".metric."
	inc := func(name string, v any) {
		if n, ok := toUint64(v); ok && n > 0 {
			pdk.IncrementCounter(prefix+name, n)
		}
	}
	for _, k := range metricNames {
		v, _ := ctx.Attribute(k)
		inc(k, v)
	}
	if v, ok := ctx.Attribute(attrFirstTokenLatency); ok {
		inc(attrFirstTokenLatency, v)
		inc("llm_stream_duration_count", uint64(1))
	}
	if v, ok := ctx.Attribute(attrServiceDuration); ok {
		inc(attrServiceDuration, v)
		inc("llm_duration_count", uint64(1))
	}
}

// toUint64 converts a numeric attribute value; strings are not numbers.
func toUint64(v any) (uint64, bool) {
	switch n := v.(type) {
	case int:
		return uint64(max(n, 0)), true
	case int32:
		return uint64(max(n, 0)), true
	case int64:
		return uint64(max(n, 0)), true
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	case float32:
		return uint64(max(n, 0)), true
	case float64:
		return uint64(max(n, 0)), true
	}
	return 0, false
}
