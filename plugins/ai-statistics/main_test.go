package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// These tests run the plugin natively on the SDK's proxytest emulator; each
// case is a behaviour statement or test-derived acceptance criterion of
// shared/spec/plugins-A.md §6 (§6.6 mostly), or one of the fixes listed in
// README.md. e2e_test.go runs it as wasm in the gateway.

// fakeClock makes every reading of the clock 10 ms later than the last, so
// durations are positive and deterministic.
func fakeClock(t *testing.T) {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	prev := now
	now = func() time.Time { n++; return base.Add(time.Duration(n) * 10 * time.Millisecond) }
	t.Cleanup(func() { now = prev })
}

func start(t *testing.T, config string, opts ...pdktest.Option) *pdktest.Host {
	t.Helper()
	fakeClock(t)
	h := pdktest.New(t, plugin.VMContext(), config, opts...)
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

// exchange describes one request/response through the plugin.
type exchange struct {
	path        string
	reqHeaders  []string // extra name/value pairs
	reqBody     string
	contentType string   // of the response
	respHeaders []string // extra name/value pairs
	chunks      []string // response body chunks; the last ends the stream
}

// result is what the plugin did with an exchange.
type result struct {
	headersAction types.Action
	bodyAction    types.Action
	respAction    types.Action
	chunksOut     []string // response chunks as forwarded (streaming mode)
}

func run(t *testing.T, h *pdktest.Host, ex exchange) result {
	t.Helper()
	if ex.path == "" {
		ex.path = "/v1/chat/completions"
	}
	if ex.contentType == "" {
		ex.contentType = "application/json"
	}
	var r result
	id := h.InitializeHttpContext()
	r.headersAction = h.CallOnRequestHeaders(id, pdktest.RequestHeaders("api.example.com", ex.path, ex.reqHeaders...), ex.reqBody == "")
	if ex.reqBody != "" {
		r.bodyAction = h.CallOnRequestBody(id, []byte(ex.reqBody), true)
	}
	rh := append(pdktest.Headers(":status", "200", "content-type", ex.contentType), pdktest.Headers(ex.respHeaders...)...)
	r.respAction = h.CallOnResponseHeaders(id, rh, len(ex.chunks) == 0)
	for i, c := range ex.chunks {
		eos := i == len(ex.chunks)-1
		h.CallOnResponseBody(id, []byte(c), eos)
		r.chunksOut = append(r.chunksOut, string(h.GetCurrentResponseBody(id)))
	}
	h.CompleteHttpContext(id)
	return r
}

// aiLog returns the ai_log property as an object.
func aiLog(t *testing.T, h *pdktest.Host) map[string]any {
	t.Helper()
	raw, err := h.GetProperty([]string{pdk.AILogKey})
	if err != nil {
		t.Fatalf("ai_log not written: %v", err)
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &s); err != nil {
		t.Fatalf("ai_log %s is not JSON-escaped: %v", raw, err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("ai_log %s is not a JSON object: %v", s, err)
	}
	return m
}

func property(h *pdktest.Host, name string) (string, bool) {
	b, err := h.GetProperty([]string{name})
	return string(b), err == nil
}

func counter(t *testing.T, h *pdktest.Host, name string) uint64 {
	t.Helper()
	v, err := h.GetCounterMetric(name)
	if err != nil {
		t.Errorf("counter %s: %v", name, err)
	}
	return v
}

const chatRequest = `{"model":"gpt-3.5-turbo","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"What is the capital of France?"}]}`

const chatResponse = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-3.5-turbo","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris.","reasoning_content":"Geography."}}],"usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13}}`

func TestConfigAccepted(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"empty object", `{}`},
		{"empty attributes", `{"attributes":[]}`},
		{"basic attributes", `{"attributes":[
			{"key":"request_id","value_source":"request_header","value":"x-request-id","apply_to_log":true},
			{"key":"version","value_source":"fixed_value","value":"v1","apply_to_log":true},
			{"key":"req_model","value_source":"request_body","value":"model","apply_to_log":true},
			{"key":"prompt_tokens","value_source":"response_body","value":"usage.prompt_tokens","apply_to_log":true},
			{"key":"completion_tokens","value_source":"response_body","value":"usage.completion_tokens","apply_to_log":true}]}`},
		{"streaming rules", `{"attributes":[
			{"key":"first_id","value_source":"response_streaming_body","value":"id","rule":"first","apply_to_log":true},
			{"key":"last_content","value_source":"response_streaming_body","value":"choices.0.delta.content","rule":"replace","apply_to_log":true}]}`},
		{"gjson query", `{"attributes":[{"key":"user_msgs","value_source":"request_body","value":"messages.#(role==\"user\")","apply_to_log":true}]}`},
		{"disable usage", `{"disable_openai_usage":true}`},
		{"full preset", `{"use_default_attributes":true}`},
		{"lightweight preset", `{"use_default_response_attributes":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) { start(t, tc.config) })
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"bad rule", `{"attributes":[{"key":"a","value_source":"response_streaming_body","value":"id","rule":"last"}]}`,
			`attributes[0].rule: value of rule must be one of [nil, first, replace, append], not "last"`},
		{"bad source", `{"attributes":[{"key":"a","value_source":"request_headers","value":"x"}]}`,
			`attributes[0].value_source: "request_headers" is not a value source`},
		{"empty key", `{"attributes":[{"value_source":"fixed_value","value":"x"}]}`,
			`attributes[0].key: must not be empty`},
		{"path source without value", `{"attributes":[{"key":"a","value_source":"request_body"}]}`,
			`attributes[0].value: must name the header or the GJSON path`},
		{"non-positive limit", `{"value_length_limit":0}`, `value_length_limit: must be positive`},
		{"typo", `{"atributes":[]}`, `atributes: unknown field`},
		{"wrong type", `{"disable_openai_usage":"yes"}`, `disable_openai_usage`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := pdktest.New(t, plugin.VMContext(), tc.config)
			if h.Start() {
				t.Fatal("configure accepted the configuration")
			}
			logs := strings.Join(h.GetErrorLogs(), "\n")
			if !strings.Contains(logs, tc.want) {
				t.Errorf("error logs\n%s\nlack %q", logs, tc.want)
			}
		})
	}
}

func TestPathEnabled(t *testing.T) {
	std := []string{"/completions", "/messages"}
	for _, tc := range []struct {
		path     string
		suffixes []string
		want     bool
	}{
		{"/v1/chat/completions", nil, true},
		{"/v1/chat/completions", []string{}, true},
		{"/v1/chat/completions", std, true},
		{"/v1/messages", std, true},
		{"/v1/embeddings", std, false},
		{"/v1/chat/completions?stream=true", []string{"/completions"}, true},
		{"/v1/embeddings?stream=true", []string{"/completions"}, false},
	} {
		if got := pathEnabled(tc.path, tc.suffixes); got != tc.want {
			t.Errorf("pathEnabled(%q, %q) = %t", tc.path, tc.suffixes, got)
		}
	}
}

func TestContentTypeEnabled(t *testing.T) {
	for _, tc := range []struct {
		ct    string
		types []string
		want  bool
	}{
		{"application/json", nil, true},
		{"application/json", []string{}, true},
		{"text/event-stream; charset=utf-8", []string{"text/event-stream"}, true},
		{"text/html", []string{"application/json", "text/event-stream"}, false},
	} {
		if got := contentTypeEnabled(tc.ct, tc.types); got != tc.want {
			t.Errorf("contentTypeEnabled(%q, %q) = %t", tc.ct, tc.types, got)
		}
	}
}

func TestToUint64(t *testing.T) {
	for _, v := range []any{int32(10), int64(10), uint32(10), uint64(10), float32(10), float64(10), 10} {
		if n, ok := toUint64(v); !ok || n != 10 {
			t.Errorf("toUint64(%T 10) = %d, %t", v, n, ok)
		}
	}
	if _, ok := toUint64("10"); ok {
		t.Error(`toUint64("10") converted a string`)
	}
}

func TestBuiltinKeysAndSources(t *testing.T) {
	for _, k := range []string{"question", "answer", "tool_calls", "reasoning"} {
		if !isBuiltin(k) {
			t.Errorf("%s is not built-in", k)
		}
	}
	for _, k := range []string{"custom_key", "model"} {
		if isBuiltin(k) {
			t.Errorf("%s is built-in", k)
		}
	}
	if got := defaultSources("question"); !reflect.DeepEqual(got, []string{sourceRequestBody}) {
		t.Errorf("question sources %v", got)
	}
	for _, k := range []string{"answer", "tool_calls", "reasoning"} {
		got := defaultSources(k)
		if !contains(got, sourceResponseStreams) || !contains(got, sourceResponseBody) {
			t.Errorf("%s sources %v", k, got)
		}
	}
	if got := defaultSources("custom_key"); got != nil {
		t.Errorf("custom_key sources %v", got)
	}
	for _, tc := range []struct {
		a      attribute
		source string
		want   bool
	}{
		{attribute{Key: "x", ValueSource: sourceRequestBody}, sourceRequestBody, true},
		{attribute{Key: "x", ValueSource: sourceRequestBody}, sourceResponseBody, false},
		{attribute{Key: "question"}, sourceRequestBody, true},
		{attribute{Key: "question"}, sourceResponseBody, false},
		{attribute{Key: "answer"}, sourceResponseBody, true},
		{attribute{Key: "answer"}, sourceResponseStreams, true},
		{attribute{Key: "answer"}, sourceRequestBody, false},
		{attribute{Key: "custom_key"}, sourceRequestBody, false},
		{attribute{Key: "custom_key"}, sourceResponseBody, false},
	} {
		if got := shouldProcess(tc.a, tc.source); got != tc.want {
			t.Errorf("shouldProcess(%+v, %s) = %t", tc.a, tc.source, got)
		}
	}
}

func events(data ...string) [][]byte {
	out := make([][]byte, len(data))
	for i, d := range data {
		out[i] = []byte(d)
	}
	return out
}

func TestToolCallAssembly(t *testing.T) {
	fn := func(i int, id, typ, name, args string) toolCall {
		return toolCall{Index: i, ID: id, Type: typ, Function: toolFunction{Name: name, Arguments: args}}
	}
	for _, tc := range []struct {
		name   string
		events [][]byte
		want   []toolCall
	}{
		{"openai one call", events(
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_123","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"loc"}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ation"}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\":\"Beijing\"}"}}]}}]}`),
			[]toolCall{fn(0, "call_123", "function", "get_weather", `{"location":"Beijing"}`)}},
		{"openai two interleaved calls", events(
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_001","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"call_002","type":"function","function":{"name":"get_time","arguments":""}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Beijing\"}"}}]}}]}`,
			`{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"timezone\":\"UTC+8\"}"}}]}}]}`),
			[]toolCall{fn(0, "call_001", "function", "get_weather", `{"city":"Beijing"}`), fn(1, "call_002", "function", "get_time", `{"timezone":"UTC+8"}`)}},
		{"openai no tool calls", events(`{"choices":[{"delta":{"content":"Hi"}}]}`, `[DONE]`), []toolCall{}},
		{"anthropic partial_json (empty initial input ignored)", events(
			`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"tool_123","name":"get_weather","input":{}}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"loc"}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"ation\":"}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Beijing\"}"}}`,
			`{"type":"content_block_stop","index":0}`),
			[]toolCall{fn(0, "tool_123", "tool_use", "get_weather", `{"location":"Beijing"}`)}},
		{"anthropic ping and text", events(`{"type":"ping"}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`), []toolCall{}},
		{"anthropic input at start", events(
			`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tool_456","name":"get_time","input":{"timezone":"UTC+8"}}}`,
			`{"type":"content_block_stop","index":1}`),
			[]toolCall{fn(1, "tool_456", "tool_use", "get_time", `{"timezone":"UTC+8"}`)}},
		{"anthropic empty input, delta without partial_json", events(
			`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"tool_123","name":"noop","input":{}}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta"}}`,
			`{"type":"content_block_stop","index":0}`),
			[]toolCall{fn(0, "tool_123", "tool_use", "noop", `{}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := assembleToolCalls(tc.events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// fix: index 0 is serialised.
	b, _ := json.Marshal(fn(0, "c", "function", "f", "{}"))
	if !strings.Contains(string(b), `"index":0`) {
		t.Errorf("tool call JSON %s lacks index 0", b)
	}
}

func TestHeadersAndBodyContinue(t *testing.T) {
	h := start(t, `{}`)
	r := run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if r.headersAction != types.ActionContinue || r.bodyAction != types.ActionContinue {
		t.Errorf("request actions %v %v, want Continue", r.headersAction, r.bodyAction)
	}
}

func TestStreamingChunksAreUnchanged(t *testing.T) {
	h := start(t, `{"use_default_attributes":true}`)
	chunks := []string{
		"data: {\"id\":\"c1\",\"model\":\"gpt-4\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
		"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":8,\"total_tokens\":13}}\n\ndata: [DONE]\n\n",
	}
	r := run(t, h, exchange{reqBody: chatRequest, contentType: "text/event-stream", chunks: chunks})
	if !reflect.DeepEqual(r.chunksOut, chunks) {
		t.Errorf("chunks changed:\n got %q\nwant %q", r.chunksOut, chunks)
	}
}

func TestMetricsBufferedResponse(t *testing.T) {
	h := start(t, `{}`, pdktest.WithProperty([]string{"route_name"}, "api-v1"), pdktest.WithProperty([]string{"cluster_name"}, "cluster-1"))
	run(t, h, exchange{reqHeaders: []string{"x-mse-consumer", "consumer1"}, reqBody: `{"model":"gpt-3.5-turbo","messages":[{"role":"user","content":"hi"}]}`,
		chunks: []string{`{"id":"x","model":"gpt-3.5-turbo","usage":{"prompt_tokens":5,"completion_tokens":8,"total_tokens":13}}`}})
	p := "route.api-v1.upstream.cluster-1.model.gpt-3.5-turbo.consumer.consumer1.metric."
	for name, want := range map[string]uint64{"input_token": 5, "output_token": 8, "total_token": 13, "llm_duration_count": 1} {
		if got := counter(t, h, p+name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := counter(t, h, p+"llm_service_duration"); got == 0 {
		t.Error("llm_service_duration = 0")
	}
	if _, err := h.GetCounterMetric(p + "llm_stream_duration_count"); err == nil {
		t.Error("a buffered response counted as a stream")
	}
	log := aiLog(t, h)
	for k, want := range map[string]any{"model": "gpt-3.5-turbo", "input_token": 5.0, "output_token": 8.0, "total_token": 13.0,
		"response_type": "normal", "chat_id": "x", "api": "-", "chat_round": 1.0} {
		if !reflect.DeepEqual(log[k], want) {
			t.Errorf("ai_log[%s] = %#v, want %#v (ai_log %v)", k, log[k], want, log)
		}
	}
	if d, _ := log["llm_service_duration"].(float64); d <= 0 {
		t.Errorf("ai_log llm_service_duration %v", log["llm_service_duration"])
	}
}

func TestMetricsStreamingResponse(t *testing.T) {
	h := start(t, `{}`, pdktest.WithProperty([]string{"route_name"}, "api-v1"), pdktest.WithProperty([]string{"cluster_name"}, "cluster-1"))
	r := run(t, h, exchange{reqHeaders: []string{"x-mse-consumer", "consumer2"}, reqBody: `{"model":"gpt-4","stream":true}`,
		contentType: "text/event-stream", chunks: []string{
			"data: {\"id\":\"s1\",\"model\":\"gpt-4\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n",
			"data: {\"id\":\"s1\",\"model\":\"gpt-4\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":8,\"total_tokens\":13}}\n\ndata: [DONE]\n\n",
		}})
	if r.respAction != types.ActionContinue {
		t.Errorf("response headers action %v", r.respAction)
	}
	p := "route.api-v1.upstream.cluster-1.model.gpt-4.consumer.consumer2.metric."
	for name, want := range map[string]uint64{"input_token": 5, "output_token": 8, "total_token": 13, "llm_stream_duration_count": 1, "llm_duration_count": 1} {
		if got := counter(t, h, p+name); got != want {
			t.Errorf("%s = %d, want %d (not summed over chunks)", name, got, want)
		}
	}
	for _, name := range []string{"llm_first_token_duration", "llm_service_duration"} {
		if got := counter(t, h, p+name); got == 0 {
			t.Errorf("%s = 0", name)
		}
	}
	log := aiLog(t, h)
	if log["response_type"] != "stream" || log["chat_id"] != "s1" || log["output_token"] != 8.0 {
		t.Errorf("ai_log %v", log)
	}
	for tag, want := range map[string]string{"gen_ai.span.kind": "LLM", "gen_ai.request.model": "gpt-4", "gen_ai.model_name": "gpt-4",
		"gen_ai.usage.input_tokens": "5", "gen_ai.usage.output_tokens": "8", "gen_ai.usage.total_tokens": "13"} {
		if got, _ := property(h, pdk.TraceSpanTagPrefix+tag); got != want {
			t.Errorf("span %s = %q, want %q", tag, got, want)
		}
	}
}

func TestRouteNameWithAPI(t *testing.T) {
	h := start(t, `{}`, pdktest.WithProperty([]string{"route_name"}, "api@v1@service@extra"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if got := aiLog(t, h)["api"]; got != "api@v1@service" {
		t.Errorf("api = %v", got)
	}
	if got := counter(t, h, "route.api@v1@service.upstream.c.model.gpt-3.5-turbo.consumer.none.metric.total_token"); got != 13 {
		t.Errorf("total_token = %d", got)
	}
}

func TestUserAttributes(t *testing.T) {
	h := start(t, `{"attributes":[
		{"key":"version","value_source":"fixed_value","value":"v1","apply_to_log":true,"apply_to_span":true},
		{"key":"tenant","value_source":"request_header","value":"x-tenant","apply_to_log":true,"apply_to_span":true,"trace_span_key":"app.tenant"},
		{"key":"temperature","value_source":"request_body","value":"temperature","default_value":"0.7","apply_to_log":true},
		{"key":"user_msgs","value_source":"request_body","value":"messages.#(role==\"user\")#.content","apply_to_log":true},
		{"key":"upstream","value_source":"response_header","value":"x-upstream","apply_to_log":true},
		{"key":"finish","value_source":"response_body","value":"choices.0.finish_reason","apply_to_log":true,"apply_to_span":true},
		{"key":"prompt","value_source":"response_body","value":"usage.prompt_tokens","apply_to_log":true},
		{"key":"request_text","value_source":"request_body","value":"messages.0.content","as_separate_log_field":true,"apply_to_log":true}]}`)
	run(t, h, exchange{reqHeaders: []string{"x-tenant", "acme"}, reqBody: chatRequest,
		respHeaders: []string{"x-upstream", "u1"}, chunks: []string{chatResponse}})
	log := aiLog(t, h)
	for k, want := range map[string]any{"version": "v1", "tenant": "acme", "temperature": "0.7", "upstream": "u1", "prompt": 5.0,
		"user_msgs": []any{"Hi", "What is the capital of France?"}} {
		if !reflect.DeepEqual(log[k], want) {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
	if _, ok := log["finish"]; ok {
		t.Errorf("missing value logged: %v", log["finish"])
	}
	if v, ok := property(h, pdk.TraceSpanTagPrefix+"finish"); ok {
		t.Errorf("nil value written to the span as %q (Higress writes <nil>)", v)
	}
	if v, _ := property(h, pdk.TraceSpanTagPrefix+"app.tenant"); v != "acme" {
		t.Errorf("span app.tenant = %q", v)
	}
	if v, _ := property(h, pdk.TraceSpanTagPrefix+"version"); v != "v1" {
		t.Errorf("span version = %q", v)
	}
	if v, _ := property(h, "request_text"); v != "Be brief." {
		t.Errorf("separate field request_text = %q", v)
	}
	if _, ok := log["request_text"]; ok {
		t.Error("separate log field also written into ai_log")
	}
}

func TestBuiltinAttributesBuffered(t *testing.T) {
	h := start(t, `{"attributes":[{"key":"question","apply_to_log":true},{"key":"answer","apply_to_log":true},
		{"key":"reasoning","apply_to_log":true},{"key":"tool_calls","apply_to_log":true}]}`)
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	log := aiLog(t, h)
	for k, want := range map[string]any{"question": "What is the capital of France?", "answer": "The capital of France is Paris.", "reasoning": "Geography."} {
		if log[k] != want {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
	if _, ok := log["tool_calls"]; ok {
		t.Errorf("tool_calls without any: %v", log["tool_calls"])
	}
}

func TestBuiltinAttributesAnthropicBuffered(t *testing.T) {
	h := start(t, `{"attributes":[{"key":"system","apply_to_log":true},{"key":"answer","apply_to_log":true}]}`)
	run(t, h, exchange{path: "/v1/messages", reqBody: `{"model":"claude-3","system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}`,
		chunks: []string{`{"id":"msg_1","type":"message","model":"claude-3","content":[{"type":"text","text":"Hello!"}],"usage":{"input_tokens":3,"output_tokens":2}}`}})
	log := aiLog(t, h)
	for k, want := range map[string]any{"system": "Be brief.", "answer": "Hello!", "model": "claude-3", "input_token": 3.0, "output_token": 2.0, "total_token": 5.0, "chat_id": "msg_1"} {
		if log[k] != want {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
}

func TestBuiltinAttributesStreaming(t *testing.T) {
	// answer has no rule: fix, it appends (Higress logs nothing).
	h := start(t, `{"attributes":[{"key":"answer","apply_to_log":true},{"key":"reasoning","apply_to_log":true},
		{"key":"tool_calls","apply_to_log":true},
		{"key":"first_id","value_source":"response_streaming_body","value":"id","rule":"first","apply_to_log":true},
		{"key":"last_finish","value_source":"response_streaming_body","value":"choices.0.finish_reason","rule":"replace","apply_to_log":true}]}`)
	chunks := []string{
		"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"reasoning_content\":\"Think\"}}]}\n\ndata: {\"id\":\"c2\",\"choices\":[{\"delta\":{\"content\":\"The capital \"}}]}\n\nda",
		"ta: {\"id\":\"c3\",\"choices\":[{\"delta\":{\"content\":\"is Paris.\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
	}
	run(t, h, exchange{reqBody: chatRequest, contentType: "text/event-stream", chunks: chunks})
	log := aiLog(t, h)
	for k, want := range map[string]any{"answer": "The capital is Paris.", "reasoning": "Think", "first_id": "c1", "last_finish": "stop",
		"tool_calls": []any{map[string]any{"index": 0.0, "id": "call_1", "type": "function", "function": map[string]any{"name": "f", "arguments": "{}"}}}} {
		if !reflect.DeepEqual(log[k], want) {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
}

func TestAnthropicStreamingUsageAndAnswer(t *testing.T) {
	h := start(t, `{"attributes":[{"key":"answer","apply_to_log":true}]}`, pdktest.WithProperty([]string{"route_name"}, "r"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
	chunks := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-3\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi there\"}}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	run(t, h, exchange{path: "/v1/messages", reqBody: `{"model":"claude-3","messages":[{"role":"user","content":"Hi"}]}`, contentType: "text/event-stream", chunks: chunks})
	log := aiLog(t, h)
	for k, want := range map[string]any{"answer": "Hi there", "model": "claude-3", "input_token": 7.0, "output_token": 4.0, "chat_id": "msg_1"} {
		if log[k] != want {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
	if got := counter(t, h, "route.r.upstream.c.model.claude-3.consumer.none.metric.output_token"); got != 4 {
		t.Errorf("output_token = %d", got)
	}
}

func TestSessionID(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		headers      []string
		want         any
	}{
		{"custom header", `{"session_id_header":"x-custom-session"}`, []string{"x-custom-session", "sess_custom_123", "x-agent-session", "a"}, "sess_custom_123"},
		{"default priority", `{}`, []string{"x-agent-session", "a", "x-clawdbot-session-key", "c", "x-openclaw-session-key", "o"}, "o"},
		{"custom header absent falls back", `{"session_id_header":"x-custom-session"}`, []string{"x-agent-session", "a"}, "a"},
		{"none", `{}`, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.config)
			run(t, h, exchange{reqHeaders: tc.headers, reqBody: chatRequest, chunks: []string{chatResponse}})
			if got := aiLog(t, h)["session_id"]; got != tc.want {
				t.Errorf("session_id = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestTokenDetails(t *testing.T) {
	h := start(t, `{"use_default_response_attributes":true}`)
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{`{"id":"x","model":"o1","usage":{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,
		"prompt_tokens_details":{"cached_tokens":80},"completion_tokens_details":{"reasoning_tokens":25}}}`}})
	log := aiLog(t, h)
	for k, want := range map[string]any{"reasoning_tokens": 25.0, "cached_tokens": 80.0,
		"input_token_details": `{"cached_tokens":80}`, "output_token_details": `{"reasoning_tokens":25}`} {
		if log[k] != want {
			t.Errorf("ai_log[%s] = %#v, want %#v", k, log[k], want)
		}
	}
}

func TestFiltersSkip(t *testing.T) {
	for _, tc := range []struct {
		name, config, path, ct string
	}{
		{"path not enabled", `{"enable_path_suffixes":["/completions"]}`, "/v1/embeddings", "application/json"},
		{"preset default paths", `{"use_default_response_attributes":true}`, "/v1/embeddings", "application/json"},
		{"content type not enabled", `{"enable_content_types":["text/event-stream"]}`, "/v1/chat/completions", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.config, pdktest.WithProperty([]string{"route_name"}, "r"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
			r := run(t, h, exchange{path: tc.path, reqBody: chatRequest, contentType: tc.ct, chunks: []string{chatResponse}})
			if r.headersAction != types.ActionContinue || r.respAction != types.ActionContinue {
				t.Errorf("actions %v %v", r.headersAction, r.respAction)
			}
			if _, err := h.GetCounterMetric("route.r.upstream.c.model.gpt-3.5-turbo.consumer.none.metric.total_token"); err == nil {
				t.Error("a skipped request was counted")
			}
			if raw, err := h.GetProperty([]string{pdk.AILogKey}); err == nil && strings.Contains(string(raw), "total_token") {
				t.Errorf("a skipped request logged usage: %s", raw)
			}
		})
	}
}

func TestValueLengthLimit(t *testing.T) {
	h := start(t, `{"value_length_limit":20,"attributes":[{"key":"long","value_source":"fixed_value","value":"long_value_that_exceeds_the_limit","apply_to_log":true}]}`)
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if got, want := aiLog(t, h)["long"], "long_value [truncated] _the_limit"; got != want {
		t.Errorf("long = %#v, want %#v", got, want)
	}
}

func TestDisableOpenAIUsage(t *testing.T) {
	h := start(t, `{"disable_openai_usage":true}`, pdktest.WithProperty([]string{"route_name"}, "r"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if _, err := h.GetCounterMetric("route.r.upstream.c.model.gpt-3.5-turbo.consumer.none.metric.total_token"); err == nil {
		t.Error("counted with disable_openai_usage")
	}
	if _, ok := aiLog(t, h)["total_token"]; ok {
		t.Error("usage logged with disable_openai_usage")
	}
}

func TestUsageFromUserAttributesFeedsMetrics(t *testing.T) {
	// The README's Bailian example: usage at provider-specific paths.
	h := start(t, `{"attributes":[
		{"key":"model","value_source":"response_body","value":"usage.models.0.model_id","apply_to_log":true},
		{"key":"input_token","value_source":"response_body","value":"usage.models.0.input_tokens","apply_to_log":true},
		{"key":"output_token","value_source":"response_body","value":"usage.models.0.output_tokens","apply_to_log":true},
		{"key":"total_token","value_source":"response_body","value":"usage.models.0.total_tokens","apply_to_log":true}]}`,
		pdktest.WithProperty([]string{"route_name"}, "r"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
	run(t, h, exchange{path: "/api/v1/apps/x/completion", reqBody: `{"input":{"prompt":"hi"}}`,
		chunks: []string{`{"output":{"text":"ok"},"usage":{"models":[{"model_id":"qwen-max","input_tokens":4,"output_tokens":6,"total_tokens":10}]}}`}})
	if got := counter(t, h, "route.r.upstream.c.model.qwen-max.consumer.none.metric.output_token"); got != 6 {
		t.Errorf("output_token = %d", got)
	}
}

func TestAILogMergesWithOtherPlugins(t *testing.T) {
	h := start(t, `{}`, pdktest.WithProperty([]string{pdk.AILogKey}, `{\"cache_status\":\"miss\",\"api\":\"old\"}`))
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	log := aiLog(t, h)
	if log["cache_status"] != "miss" || log["api"] != "-" || log["model"] != "gpt-3.5-turbo" {
		t.Errorf("merged ai_log %v", log)
	}
}

func TestRequestWithoutBody(t *testing.T) {
	h := start(t, `{}`, pdktest.WithProperty([]string{"route_name"}, "r"), pdktest.WithProperty([]string{"cluster_name"}, "c"))
	run(t, h, exchange{chunks: []string{`{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`}})
	log := aiLog(t, h)
	if _, ok := log["chat_round"]; ok {
		t.Errorf("chat_round without a body: %v", log)
	}
	if log["model"] != "unknown" {
		t.Errorf("model %v, want unknown", log["model"])
	}
}

func TestDebugDump(t *testing.T) {
	h := start(t, `{}`, pdktest.WithLogLevel(pdk.LevelDebug))
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if !strings.Contains(strings.Join(h.GetDebugLogs(), "\n"), "[ai_log] attributes to be written: {") {
		t.Errorf("no debug dump in %q", h.GetDebugLogs())
	}
}

// dumps counts the debug dumps of ai_log writes.
func dumps(h *pdktest.Host) int {
	return strings.Count(strings.Join(h.GetDebugLogs(), "\n"), "[ai_log] attributes to be written:")
}

// TestAILogWrittenOncePerResponse: the request phase and usage seen
// mid-stream only mark ai_log for writing; it is merged once, at the end
// of the response (Higress merges at each of those points; the README lists
// the difference).
func TestAILogWrittenOncePerResponse(t *testing.T) {
	h := start(t, `{}`, pdktest.WithLogLevel(pdk.LevelDebug))
	run(t, h, exchange{reqBody: chatRequest, chunks: []string{chatResponse}})
	if n := dumps(h); n != 1 {
		t.Errorf("chat: ai_log written %d times, want once", n)
	}
	if log := aiLog(t, h); log["chat_round"] != 2.0 || log["total_token"] != 13.0 {
		t.Errorf("chat: ai_log %v", log)
	}

	h = start(t, `{}`, pdktest.WithLogLevel(pdk.LevelDebug))
	run(t, h, exchange{reqBody: chatRequest, contentType: "text/event-stream", chunks: []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"Paris\"}}]}\n\n",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":8,\"total_tokens\":13}}\n\n",
		"data: [DONE]\n\n",
	}})
	if n := dumps(h); n != 1 {
		t.Errorf("stream: ai_log written %d times, want once", n)
	}
	if log := aiLog(t, h); log["chat_round"] != 2.0 || log["total_token"] != 13.0 || log["response_type"] != "stream" {
		t.Errorf("stream: ai_log %v", log)
	}
}

// TestAILogWrittenAtStreamDone: a stream that ends before its response body
// reached the plugin (here: reset after the response headers) still leaves
// the request's attributes in ai_log, written when the stream is done.
func TestAILogWrittenAtStreamDone(t *testing.T) {
	h := start(t, `{}`, pdktest.WithLogLevel(pdk.LevelDebug))
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("api.example.com", "/v1/chat/completions"), false)
	h.CallOnRequestBody(id, []byte(chatRequest), true)
	if n := dumps(h); n != 0 {
		t.Errorf("ai_log written %d times during the request phase, want 0", n)
	}
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "text/event-stream"), false)
	h.CompleteHttpContext(id)
	if n := dumps(h); n != 1 {
		t.Errorf("ai_log written %d times, want once (at stream done)", n)
	}
	if log := aiLog(t, h); log["chat_round"] != 2.0 || log["api"] != "-" {
		t.Errorf("ai_log %v", log)
	}
}

// FuzzStreamedAttributes feeds arbitrary stream text to the streamed
// attribute evaluation: it must never panic, and a built-in answer is
// always a string.
func FuzzStreamedAttributes(f *testing.F) {
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"a\",\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n")
	f.Add("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":-3,\"content_block\":{\"type\":\"tool_use\",\"input\":[]}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":-3}\n\n")
	f.Add("data: [DONE]\r\n\r\n: ping\r\rdata: {")
	f.Fuzz(func(t *testing.T, stream string) {
		evs := sseEvents([]byte(stream))
		_ = assembleToolCalls(evs)
		for _, rule := range []string{"", ruleFirst, ruleReplace, ruleAppend} {
			_ = byRule(evs, rule, func(ev []byte) gjson.Result { return gjson.GetBytes(ev, "choices.0.delta") })
		}
		if v := builtinValue(nil, attribute{Key: keyAnswer}, sourceResponseStreams, []byte(stream), evs); v != nil {
			if _, ok := v.(string); !ok {
				t.Errorf("answer %#v is not a string", v)
			}
		}
	})
}
