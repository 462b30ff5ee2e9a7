package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// These tests run the plugin natively on the SDK's proxytest emulator, or
// call its translation functions directly; each case is a behaviour
// statement of shared/spec/plugins-C.md §6 (or one of the differences in
// README.md). e2e_test.go runs the wasm in the gateway against the
// stand-ins.

func start(t *testing.T, config string, opts ...pdktest.Option) *pdktest.Host {
	t.Helper()
	h := pdktest.New(t, newVM(&plugin), config, opts...)
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

// result is one request through the plugin.
type result struct {
	headersAction types.Action
	headers       map[string]string
	body          string
	reply         *proxytest.LocalHttpResponse
	id            uint32
}

// send runs request headers and (if body != "") the body through the
// plugin; extra are header name, value pairs.
func send(t *testing.T, h *pdktest.Host, method, path, body string, extra ...string) result {
	t.Helper()
	id := h.InitializeHttpContext()
	hdrs := [][2]string{{":method", method}, {":path", path}, {":authority", "gw.example.com"}, {":scheme", "http"}}
	if body != "" {
		hdrs = append(hdrs, [2]string{"content-type", "application/json"}, [2]string{"content-length", fmt.Sprint(len(body))})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		hdrs = append(hdrs, [2]string{extra[i], extra[i+1]})
	}
	var r result
	r.id = id
	r.headersAction = h.CallOnRequestHeaders(id, hdrs, body == "")
	if body != "" && h.GetSentLocalResponse(id) == nil {
		h.CallOnRequestBody(id, []byte(body), true)
		r.body = string(h.GetCurrentRequestBody(id))
	}
	r.headers = map[string]string{}
	for _, kv := range h.GetCurrentRequestHeaders(id) {
		r.headers[strings.ToLower(kv[0])] = kv[1]
	}
	r.reply = h.GetSentLocalResponse(id)
	return r
}

// respond runs response headers and body through the plugin (chunks sent
// one by one) and returns the body the client gets.
func respond(t *testing.T, h *pdktest.Host, id uint32, status, contentType string, chunks ...string) (string, map[string]string) {
	t.Helper()
	h.CallOnResponseHeaders(id, [][2]string{{":status", status}, {"content-type", contentType}}, false)
	var out strings.Builder
	for i, c := range chunks {
		eos := i == len(chunks)-1
		action := h.CallOnResponseBody(id, []byte(c), eos)
		if action == types.ActionContinue {
			out.Write(h.GetCurrentResponseBody(id))
		}
	}
	hdrs := map[string]string{}
	for _, kv := range h.GetCurrentResponseHeaders(id) {
		hdrs[strings.ToLower(kv[0])] = kv[1]
	}
	return out.String(), hdrs
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, config, want string
	}{
		{"missing type", `{"provider":{"apiTokens":["k"]}}`, "provider.type: is required"},
		{"unknown type", `{"provider":{"type":"nope"}}`, `provider.type: unknown or unsupported provider type "nope"`},
		{"bad protocol", `{"provider":{"type":"openai","protocol":"grpc"}}`, `provider.protocol: must be "openai" or "original"`},
		{"tokens required", `{"provider":{"type":"deepseek"}}`, `provider.apiTokens: needs at least one token`},
		{"empty token", `{"provider":{"type":"openai","apiTokens":[""]}}`, `provider.apiTokens[0]: must not be empty`},
		{"azure url", `{"provider":{"type":"azure","apiTokens":["k"]}}`, "provider.azureServiceUrl: is required"},
		{"azure api-version", `{"provider":{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://a.openai.azure.com"}}`, "provider.azureServiceUrl: must have an api-version"},
		{"failover model", `{"provider":{"type":"openai","apiTokens":["k"],"failover":{"enabled":true}}}`, "provider.failover.healthCheckModel: is required"},
		{"failover regex", `{"provider":{"type":"openai","apiTokens":["k"],"failover":{"failoverOnStatus":["("]}}}`, "provider.failover.failoverOnStatus[0]: is not a valid regex"},
		{"retry status", `{"provider":{"type":"openai","retryOnFailure":{"maxRetries":-1}}}`, "provider.retryOnFailure.maxRetries: must be positive"},
		{"active id", `{"providers":[{"id":"a","type":"openai"}],"activeProviderId":"b"}`, `activeProviderId: "b" is not the id of any entry of providers`},
		{"duplicate id", `{"providers":[{"id":"a","type":"openai"},{"id":"a","type":"openai"}]}`, `providers[1].id: "a" is also the id of providers[0]`},
		{"unsupported field", `{"provider":{"type":"openai","context":{"fileUrl":"x"}}}`, "provider.context: is not supported by Sluice's ai-proxy yet"},
		{"typo", `{"provider":{"type":"openai","apiToken":["k"]}}`, `provider.apiToken: unknown field (did you mean "apiTokens"?)`},
		{"mapping regex", `{"provider":{"type":"openai","modelMapping":{"~(":"x"}}}`, "provider.modelMapping.~(: is not a valid regex"},
		{"ollama host", `{"provider":{"type":"ollama"}}`, "provider.ollamaServerHost: is required"},
		{"cloudflare account", `{"provider":{"type":"cloudflare","apiTokens":["k"]}}`, "provider.cloudflareAccountId: is required"},
		{"capability key", `{"provider":{"type":"openai","capabilities":{"openai/v1/nope":"/x"}}}`, "provider.capabilities.openai/v1/nope: unknown API name"},
		{"qwen native", `{"provider":{"type":"qwen","apiTokens":["k"],"qwenEnableCompatible":false}}`, "provider.qwenEnableCompatible: false (DashScope's native API) is not supported"},
		{"rule error", `{"provider":{"type":"openai"},"_rules_":[{"_match_route_":["r"],"provider":{"type":"zzz"}}]}`, `_rules_[0].provider.type: unknown or unsupported provider type "zzz"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := pdktest.New(t, newVM(&plugin), c.config)
			if h.Start() {
				t.Fatal("configure accepted the configuration")
			}
			logs := strings.Join(h.Logs(pdk.LevelError), "\n")
			if !strings.Contains(logs, c.want) {
				t.Errorf("error log lacks %q:\n%s", c.want, logs)
			}
		})
	}
}

func TestModelMapping(t *testing.T) {
	mm, err := newModelMapper(map[string]string{
		"gpt-4o": "exact", "gpt-4*": "prefix-short", "gpt-4o-*": "prefix-long", "~^claude-(.*)$": "anthropic-$1",
		"*": "default", "keep": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"gpt-4o":          "exact",
		"gpt-4o-mini":     "prefix-long", // longest prefix wins
		"gpt-4-turbo":     "prefix-short",
		"claude-3-sonnet": "anthropic-3-sonnet",
		"qwen":            "default",
		"keep":            "keep", // mapping to "" keeps the model
	}
	for in, want := range cases {
		if got := mm.Map(in); got != want {
			t.Errorf("Map(%q) = %q, want %q", in, got, want)
		}
	}
	empty, _ := newModelMapper(nil)
	if got := empty.Map("m"); got != "m" {
		t.Errorf("no mapping: %q", got)
	}
}

func TestProviderTable(t *testing.T) {
	cases := []struct {
		name, provider, path string
		wantHost, wantPath   string
		wantAuth             [2]string
	}{
		{"openai", `{"type":"openai","apiTokens":["k"]}`, "/v1/chat/completions", "api.openai.com", "/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"openai prefix kept off", `{"type":"openai","apiTokens":["k"]}`, "/api/v1/embeddings?x=1", "api.openai.com", "/v1/embeddings?x=1", [2]string{"authorization", "Bearer k"}},
		{"openai file id", `{"type":"openai","apiTokens":["k"]}`, "/v1/files/file-1/content", "api.openai.com", "/v1/files/file-1/content", [2]string{"authorization", "Bearer k"}},
		{"openai custom prefix", `{"type":"openai","apiTokens":["k"],"openaiCustomUrl":"llm.corp/api/openai"}`, "/v1/chat/completions", "llm.corp", "/api/openai/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"openai custom verbatim", `{"type":"openai","apiTokens":["k"],"openaiCustomUrl":"https://llm.corp/x/v1/chat/completions"}`, "/v1/chat/completions", "llm.corp", "/x/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"qwen", `{"type":"qwen","apiTokens":["k"]}`, "/v1/chat/completions", "dashscope.aliyuncs.com", "/compatible-mode/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"moonshot models", `{"type":"moonshot","apiTokens":["k"]}`, "/v1/models", "api.moonshot.cn", "/v1/models", [2]string{"authorization", "Bearer k"}},
		{"groq", `{"type":"groq","apiTokens":["k"]}`, "/v1/chat/completions", "api.groq.com", "/openai/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"fireworks", `{"type":"fireworks","apiTokens":["k"]}`, "/v1/completions", "api.fireworks.ai", "/inference/v1/completions", [2]string{"authorization", "Bearer k"}},
		{"openrouter", `{"type":"openrouter","apiTokens":["k"]}`, "/v1/chat/completions", "openrouter.ai", "/api/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"doubao", `{"type":"doubao","apiTokens":["k"]}`, "/v1/embeddings", "ark.cn-beijing.volces.com", "/api/v3/embeddings", [2]string{"authorization", "Bearer k"}},
		{"zhipu", `{"type":"zhipuai","apiTokens":["k"]}`, "/v1/chat/completions", "open.bigmodel.cn", "/api/paas/v4/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"zhipu code plan", `{"type":"zhipuai","apiTokens":["k"],"zhipuCodePlanMode":true,"zhipuDomain":"api.z.ai"}`, "/v1/chat/completions", "api.z.ai", "/api/coding/paas/v4/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"ai360 raw", `{"type":"ai360","apiTokens":["k"]}`, "/v1/chat/completions", "api.360.cn", "/v1/chat/completions", [2]string{"authorization", "k"}},
		{"github", `{"type":"github","apiTokens":["k"]}`, "/v1/embeddings", "models.inference.ai.azure.com", "/embeddings", [2]string{"authorization", "k"}},
		{"cloudflare", `{"type":"cloudflare","apiTokens":["k"],"cloudflareAccountId":"acc"}`, "/v1/chat/completions", "api.cloudflare.com", "/client/v4/accounts/acc/ai/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"baidu", `{"type":"baidu","apiTokens":["k"]}`, "/v1/chat/completions", "qianfan.baidubce.com", "/v2/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"minimax", `{"type":"minimax","apiTokens":["k"]}`, "/v1/chat/completions", "api.minimax.chat", "/v1/text/chatcompletion_v2", [2]string{"authorization", "Bearer k"}},
		{"ollama", `{"type":"ollama","ollamaServerHost":"ollama.local","ollamaServerPort":11434}`, "/v1/chat/completions", "ollama.local:11434", "/v1/chat/completions", [2]string{}},
		{"vllm custom url", `{"type":"vllm","vllmCustomUrl":"http://vllm.internal:8000/serve/v1"}`, "/v1/models", "vllm.internal:8000", "/serve/v1/models", [2]string{}},
		{"azure fixed deployment", `{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com/openai/deployments/dep?api-version=2024-10-21"}`,
			"/v1/embeddings", "r.openai.azure.com", "/openai/deployments/dep/embeddings?api-version=2024-10-21", [2]string{"api-key", "k"}},
		{"azure models", `{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com?api-version=v"}`, "/v1/models", "r.openai.azure.com", "/openai/models?api-version=v", [2]string{"api-key", "k"}},
		{"azure full path", `{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com/custom/path?api-version=v"}`, "/v1/chat/completions", "r.openai.azure.com", "/custom/path?api-version=v", [2]string{"api-key", "k"}},
		{"claude", `{"type":"claude","apiTokens":["k"],"claudeVersion":"2024-01-01"}`, "/v1/models", "api.anthropic.com", "/v1/models", [2]string{"x-api-key", "k"}},
		{"generic", `{"type":"generic","apiTokens":["k"],"genericHost":"llm.internal"}`, "/any/path", "llm.internal", "/any/path", [2]string{"authorization", "Bearer k"}},
		{"providerBasePath", `{"type":"deepseek","apiTokens":["k"],"providerBasePath":"/proxy"}`, "/v1/chat/completions", "api.deepseek.com", "/proxy/v1/chat/completions", [2]string{"authorization", "Bearer k"}},
		{"basePath removed", `{"type":"deepseek","apiTokens":["k"],"basePath":"/team-a"}`, "/team-a/v1/models", "api.deepseek.com", "/v1/models", [2]string{"authorization", "Bearer k"}},
		{"providerDomain", `{"type":"deepseek","apiTokens":["k"],"providerDomain":"proxy.corp"}`, "/v1/models", "proxy.corp", "/v1/models", [2]string{"authorization", "Bearer k"}},
		{"capabilities", `{"type":"mistral","apiTokens":["k"],"capabilities":{"openai/v1/audiospeech":"/tts"}}`, "/v1/audio/speech", "api.mistral.ai", "/tts", [2]string{"authorization", "Bearer k"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, `{"provider":`+c.provider+`}`)
			r := send(t, h, "GET", c.path, "", "authorization", "Bearer client")
			if r.reply != nil {
				t.Fatalf("local reply %d %s", r.reply.StatusCode, r.reply.Data)
			}
			if r.headers[":authority"] != c.wantHost || r.headers[":path"] != c.wantPath {
				t.Errorf("got %s %s", r.headers[":authority"], r.headers[":path"])
			}
			if c.wantAuth[0] != "" && r.headers[c.wantAuth[0]] != c.wantAuth[1] {
				t.Errorf("%s = %q, want %q", c.wantAuth[0], r.headers[c.wantAuth[0]], c.wantAuth[1])
			}
			if c.wantPath != c.path && r.headers[hdrOriginalPath] != c.path {
				t.Errorf("x-envoy-original-path %q", r.headers[hdrOriginalPath])
			}
			if v, _ := h.GetProperty([]string{"clear_route_cache"}); string(v) != "off" {
				t.Errorf("clear_route_cache = %q, want off", v)
			}
		})
	}
}

func TestClaudeProviderDropsClientAuthorization(t *testing.T) {
	h := start(t, `{"provider":{"type":"claude","apiTokens":["k"]}}`)
	r := send(t, h, "GET", "/v1/models", "", "authorization", "Bearer client", "x-envoy-original-path", "/spoofed")
	if _, ok := r.headers["authorization"]; ok {
		t.Error("the client's authorization reached Anthropic")
	}
	if r.headers["anthropic-version"] != defaultClaudeVersion {
		t.Errorf("anthropic-version %q", r.headers["anthropic-version"])
	}
	if _, ok := r.headers[hdrOriginalPath]; ok {
		t.Error("a client-sent x-envoy-original-path was kept")
	}
}

func TestOpenAIWithoutTokensForwardsTheClientKey(t *testing.T) {
	h := start(t, `{"provider":{"type":"openai"}}`)
	r := send(t, h, "GET", "/v1/models", "", "x-api-key", "sk-client")
	if r.headers["authorization"] != "Bearer sk-client" {
		t.Errorf("authorization %q", r.headers["authorization"])
	}
}

func TestNoActiveProviderPassesThrough(t *testing.T) {
	h := start(t, `{"providers":[{"id":"a","type":"openai","apiTokens":["k"]}]}`)
	r := send(t, h, "POST", "/v1/chat/completions", `{"model":"m"}`)
	if r.headers[":authority"] != "gw.example.com" || r.headers[":path"] != "/v1/chat/completions" || r.body != `{"model":"m"}` {
		t.Errorf("request changed: %v %s", r.headers, r.body)
	}
}

func TestRuleOverridesTheGlobalConfiguration(t *testing.T) {
	cfg := `{"providers":[{"id":"o","type":"openai","apiTokens":["ko"]},{"id":"d","type":"deepseek","apiTokens":["kd"]}],
		"activeProviderId":"o",
		"_rules_":[{"_match_route_":["deep"],"activeProviderId":"d"}]}`
	h := start(t, cfg, pdktest.WithProperty([]string{"route_name"}, "deep"))
	r := send(t, h, "GET", "/v1/models", "")
	if r.headers[":authority"] != "api.deepseek.com" || r.headers["authorization"] != "Bearer kd" {
		t.Errorf("rule: %v", r.headers)
	}
	h2 := start(t, cfg, pdktest.WithProperty([]string{"route_name"}, "other"))
	r = send(t, h2, "GET", "/v1/models", "")
	if r.headers[":authority"] != "api.openai.com" {
		t.Errorf("global: %v", r.headers)
	}
}

func TestUnsupportedAPIIs404(t *testing.T) {
	h := start(t, `{"provider":{"type":"grok","apiTokens":["k"]}}`)
	r := send(t, h, "POST", "/v1/embeddings", `{"model":"m","input":"x"}`)
	if r.reply == nil || r.reply.StatusCode != 404 || gjson.GetBytes(r.reply.Data, "error.code").String() != detailUnsupportedAPI {
		t.Fatalf("reply %+v", r.reply)
	}
}

func TestRequestBody(t *testing.T) {
	cases := []struct {
		name, provider, path, body string
		want                       map[string]string // gjson path → raw value in the body sent
	}{
		{"include_usage forced", `{"type":"openai","apiTokens":["k"]}`, "/v1/chat/completions",
			`{"model":"m","stream":true,"messages":[]}`, map[string]string{"stream_options.include_usage": "true"}},
		{"include_usage kept", `{"type":"openai","apiTokens":["k"]}`, "/v1/chat/completions",
			`{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[]}`, map[string]string{"stream_options.include_usage": "false"}},
		{"not streaming", `{"type":"openai","apiTokens":["k"]}`, "/v1/chat/completions",
			`{"model":"m","messages":[]}`, map[string]string{"stream_options": ""}},
		{"completions streaming", `{"type":"openai","apiTokens":["k"]}`, "/v1/completions",
			`{"model":"m","stream":true,"prompt":"x"}`, map[string]string{"stream_options.include_usage": "true"}},
		{"developer to system", `{"type":"deepseek","apiTokens":["k"]}`, "/v1/chat/completions",
			`{"model":"m","messages":[{"role":"developer","content":"d"}]}`, map[string]string{"messages.0.role": `"system"`}},
		{"azure keeps developer", `{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com?api-version=v"}`, "/v1/chat/completions",
			`{"model":"m","messages":[{"role":"developer","content":"d"}]}`, map[string]string{"messages.0.role": `"developer"`}},
		{"model mapped in place", `{"type":"openai","apiTokens":["k"],"modelMapping":{"a":"b"}}`, "/v1/embeddings",
			`{"input":"x","model":"a","dimensions":3}`, map[string]string{"model": `"b"`, "dimensions": "3"}},
		{"generic untouched", `{"type":"generic","apiTokens":["k"],"modelMapping":{"*":"x"}}`, "/v1/chat/completions",
			`{"model":"a","stream":true}`, map[string]string{"model": `"a"`, "stream_options": ""}},
		{"original protocol untouched", `{"type":"openai","apiTokens":["k"],"protocol":"original","modelMapping":{"*":"x"}}`, "/v1/chat/completions",
			`{"model":"a","stream":true}`, map[string]string{"model": `"a"`, "stream_options": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, `{"provider":`+c.provider+`}`)
			r := send(t, h, "POST", c.path, c.body)
			if r.reply != nil {
				t.Fatalf("local reply %d %s", r.reply.StatusCode, r.reply.Data)
			}
			for p, want := range c.want {
				if got := gjson.Get(r.body, p).Raw; got != want {
					t.Errorf("%s = %s, want %s (body %s)", p, got, want, r.body)
				}
			}
		})
	}
}

func TestAzureDeploymentIsTheMappedModel(t *testing.T) {
	h := start(t, `{"provider":{"type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com?api-version=2024-10-21","modelMapping":{"gpt-4o":"dep-4o"}}}`)
	r := send(t, h, "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`)
	if r.headersAction != types.ActionPause {
		t.Errorf("headers action %v, want pause until the body is read", r.headersAction)
	}
	if r.headers[":path"] != "/openai/deployments/dep-4o/chat/completions?api-version=2024-10-21" {
		t.Errorf("path %q", r.headers[":path"])
	}
	r = send(t, h, "POST", "/v1/chat/completions", `{"messages":[]}`)
	if r.reply == nil || r.reply.StatusCode != 400 || !strings.Contains(string(r.reply.Data), "missing model") {
		t.Errorf("without a model: %+v", r.reply)
	}
}

func TestMalformedJSONIs400(t *testing.T) {
	for _, body := range []string{`{"model":`, `[1,2]`, `nope`} {
		h := start(t, `{"provider":{"type":"openai","apiTokens":["k"]}}`)
		r := send(t, h, "POST", "/v1/chat/completions", body)
		if r.reply == nil || r.reply.StatusCode != 400 || r.reply.StatusCodeDetail != detailInvalidJSON {
			t.Fatalf("%s: reply %+v", body, r.reply)
		}
		if msg := gjson.GetBytes(r.reply.Data, "error.message").String(); !strings.Contains(msg, "JSON") {
			t.Errorf("%s: message %q", body, msg)
		}
		// The local reply runs through the plugin's response callbacks
		// unchanged.
		out, _ := respond(t, h, r.id, "400", "application/json", string(r.reply.Data))
		if out != string(r.reply.Data) {
			t.Errorf("reply rewritten: %s", out)
		}
	}
}

func TestOpenAIToClaudeRequest(t *testing.T) {
	in := `{"model":"gpt","stream":true,"max_tokens":100,"max_completion_tokens":200,"stop":"END","temperature":0.5,"reasoning_effort":"low",
	"messages":[
		{"role":"system","content":"one"},
		{"role":"developer","content":[{"type":"text","text":"two"}]},
		{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAA"}},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
		{"role":"assistant","content":"calling","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"bad"}}]},
		{"role":"tool","tool_call_id":"c1","content":"r1"},
		{"role":"tool","tool_call_id":"c2","content":"r2"}],
	"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],
	"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`
	out, err := openAIToClaudeRequest([]byte(in), "claude-x")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"model":                       `"claude-x"`,
		"max_tokens":                  "200",
		"stop_sequences":              `["END"]`,
		"stream":                      "true",
		"temperature":                 "0.5",
		"system":                      `"one\ntwo"`,
		"thinking":                    `{"type":"enabled","budget_tokens":1024}`,
		"messages.0.content.1.source": `{"data":"AAA","media_type":"image/png","type":"base64"}`,
		"messages.0.content.2.source": `{"type":"url","url":"https://x/y.png"}`,
		"messages.1.content.0":        `{"text":"calling","type":"text"}`,
		"messages.1.content.1.input":  `{"a":1}`,
		"messages.1.content.2.input":  `{}`,
		"messages.2.role":             `"user"`,
		"messages.2.content.#":        "2",
		"messages.2.content.1":        `{"content":"r2","tool_use_id":"c2","type":"tool_result"}`,
		"tools.0":                     `{"name":"f","description":"d","input_schema":{"type":"object"}}`,
		"tool_choice":                 `{"disable_parallel_tool_use":true,"name":"f","type":"tool"}`,
		"messages.#":                  "3",
		"messages.0.role":             `"user"`,
		"messages.0.content.0":        `{"text":"look","type":"text"}`,
		"messages.1.content.1.id":     `"c1"`,
	}
	for p, w := range want {
		if got := gjson.GetBytes(out, p).Raw; got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}
	// Defaults: max_tokens 4096, no thinking, string tool_choice values.
	out, _ = openAIToClaudeRequest([]byte(`{"messages":[{"role":"user","content":"x"}],"tools":[{"function":{"name":"f"}}],"tool_choice":"none"}`), "m")
	if gjson.GetBytes(out, "max_tokens").Int() != 4096 || gjson.GetBytes(out, "thinking").Exists() || gjson.GetBytes(out, "tool_choice.type").String() != "none" {
		t.Errorf("defaults: %s", out)
	}
	for effort, budget := range map[string]int64{"medium": 8192, "high": 16384} {
		out, _ = openAIToClaudeRequest([]byte(`{"reasoning_effort":"`+effort+`","messages":[{"role":"user","content":"x"}]}`), "m")
		if got := gjson.GetBytes(out, "thinking.budget_tokens").Int(); got != budget {
			t.Errorf("%s: budget %d", effort, got)
		}
	}
	out, _ = openAIToClaudeRequest([]byte(`{"reasoning_max_tokens":10,"messages":[{"role":"user","content":"x"}]}`), "m")
	if got := gjson.GetBytes(out, "thinking.budget_tokens").Int(); got != 1024 {
		t.Errorf("minimum budget: %d", got)
	}
	if _, err := openAIToClaudeRequest([]byte(`{"messages":[{"role":"wizard","content":"x"}]}`), "m"); err == nil || !strings.Contains(err.Error(), "messages[0].role") {
		t.Errorf("unknown role: %v", err)
	}
}

func TestClaudeResponseToOpenAI(t *testing.T) {
	in := `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[
		{"type":"thinking","thinking":"hmm"},{"type":"text","text":"a"},{"type":"text","text":"b"},
		{"type":"tool_use","id":"t1","name":"f","input":{"x":1}}],
		"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}`
	out, err := claudeResponseToOpenAI([]byte(in), "mapped")
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range map[string]string{
		"id": `"msg_1"`, "object": `"chat.completion"`, "model": `"mapped"`,
		"choices.0.message.content": `"ab"`, "choices.0.message.reasoning_content": `"hmm"`,
		"choices.0.message.tool_calls.0": `{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}`,
		"choices.0.finish_reason":        `"tool_calls"`,
		"usage":                          `{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}`,
	} {
		if got := gjson.GetBytes(out, p).Raw; got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}
	for stop, want := range map[string]string{"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"} {
		out, _ := claudeResponseToOpenAI([]byte(`{"content":[],"stop_reason":"`+stop+`"}`), "m")
		if got := gjson.GetBytes(out, "choices.0.finish_reason").String(); got != want {
			t.Errorf("%s → %s", stop, got)
		}
	}
	if _, err := claudeResponseToOpenAI([]byte(`{"type":"error","error":{"type":"x","message":"boom"}}`), "m"); err == nil {
		t.Error("an error body was translated")
	}
}

// claudeStream is an Anthropic stream with a text block, a thinking block
// and a tool call.
const claudeStream = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n" +
	"event: ping\ndata: {\"type\":\"ping\"}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"t\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"f\",\"input\":{}}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

func TestClaudeStreamToOpenAIChunksAcrossSplits(t *testing.T) {
	for _, size := range []int{1, 7, 64, len(claudeStream)} {
		h := start(t, `{"provider":{"type":"claude","apiTokens":["k"],"modelMapping":{"*":"claude-m"}}}`)
		r := send(t, h, "POST", "/v1/chat/completions", `{"model":"gpt","stream":true,"messages":[{"role":"user","content":"x"}]}`)
		if r.headers["accept"] != "text/event-stream" {
			t.Errorf("accept %q", r.headers["accept"])
		}
		var chunks []string
		for i := 0; i < len(claudeStream); i += size {
			chunks = append(chunks, claudeStream[i:min(i+size, len(claudeStream))])
		}
		out, _ := respond(t, h, r.id, "200", "text/event-stream", chunks...)
		var text, args, reasoning strings.Builder
		var finish, lastData string
		var usage gjson.Result
		for _, ev := range strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n") {
			data := strings.TrimPrefix(ev, "data: ")
			lastData = data
			if data == "[DONE]" {
				continue
			}
			c := gjson.Parse(data)
			if c.Get("id").String() != "msg_9" || c.Get("model").String() != "claude-m" || c.Get("object").String() != "chat.completion.chunk" {
				t.Fatalf("size %d: chunk %s", size, data)
			}
			text.WriteString(c.Get("choices.0.delta.content").String())
			reasoning.WriteString(c.Get("choices.0.delta.reasoning_content").String())
			args.WriteString(c.Get("choices.0.delta.tool_calls.0.function.arguments").String())
			if f := c.Get("choices.0.finish_reason").String(); f != "" {
				finish = f
			}
			if c.Get("usage").Exists() {
				usage = c.Get("usage")
			}
		}
		if text.String() != "Hello" || reasoning.String() != "t" || args.String() != `{"a":1}` || finish != "tool_calls" || lastData != "[DONE]" {
			t.Errorf("size %d: text %q reasoning %q args %q finish %q last %q", size, text.String(), reasoning.String(), args.String(), finish, lastData)
		}
		if usage.Raw != `{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}` {
			t.Errorf("size %d: usage %s", size, usage.Raw)
		}
		if !strings.Contains(out, `"tool_calls":[{"index":0,"id":"tu","type":"function","function":{"name":"f","arguments":""}}]`) {
			t.Errorf("size %d: no tool call start in %s", size, out)
		}
	}
}

func TestClaudeClientRequestToOpenAI(t *testing.T) {
	in := `{"model":"m","max_tokens":10,"stream":true,"stop_sequences":["S"],"system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
	"messages":[
		{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]},
		{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"q":1}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"res"}]}]}],
	"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web"}],
	"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`
	out, err := claudeRequestToOpenAI([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range map[string]string{
		"messages.0":                         `{"content":"a\nb","role":"system"}`,
		"messages.1.content.1.image_url.url": `"data:image/png;base64,AA"`,
		"messages.2.tool_calls.0.function":   `{"arguments":"{\"q\":1}","name":"f"}`,
		"messages.2.content":                 "null",
		"messages.3":                         `{"content":"res","role":"tool","tool_call_id":"t1"}`,
		"messages.#":                         "4",
		"stream_options.include_usage":       "true",
		"stop":                               `["S"]`,
		"tools.#":                            "1",
		"tools.0.function.parameters":        `{"type":"object"}`,
		"tool_choice":                        `"required"`,
		"parallel_tool_calls":                "false",
		"max_tokens":                         "10",
	} {
		if got := gjson.GetBytes(out, p).Raw; got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}
}

func TestOpenAIAnswerToClaudeClient(t *testing.T) {
	in := `{"id":"c1","choices":[{"message":{"role":"assistant","content":"hey","tool_calls":[{"id":"k","function":{"name":"f","arguments":"{\"a\":2}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":2,"completion_tokens":3}}`
	out, err := openAIResponseToClaude([]byte(in), "orig")
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range map[string]string{
		"type": `"message"`, "model": `"orig"`, "content.0": `{"text":"hey","type":"text"}`,
		"content.1": `{"id":"k","input":{"a":2},"name":"f","type":"tool_use"}`, "stop_reason": `"tool_use"`,
		"usage": `{"input_tokens":2,"output_tokens":3}`,
	} {
		if got := gjson.GetBytes(out, p).Raw; got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}
}

func TestOpenAIStreamToClaudeClient(t *testing.T) {
	h := start(t, `{"provider":{"type":"openai","apiTokens":["k"]}}`)
	r := send(t, h, "POST", "/v1/messages", `{"model":"gpt","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	if r.headers[":path"] != "/v1/chat/completions" || gjson.Get(r.body, "stream_options.include_usage").Raw != "true" {
		t.Fatalf("request %v %s", r.headers, r.body)
	}
	stream := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"He\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"k\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6,\"total_tokens\":10}}\n\n" +
		"data: [DONE]\n\n"
	out, _ := respond(t, h, r.id, "200", "text/event-stream", stream[:50], stream[50:200], stream[200:])
	var names []string
	for _, ev := range strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n") {
		name, data, _ := strings.Cut(ev, "\n")
		names = append(names, strings.TrimPrefix(name, "event: "))
		d := gjson.Parse(strings.TrimPrefix(data, "data: "))
		if d.Get("type").String() == "message_delta" {
			if d.Get("delta.stop_reason").String() != "tool_use" || d.Get("usage.output_tokens").Int() != 6 || d.Get("usage.input_tokens").Int() != 4 {
				t.Errorf("message_delta %s", data)
			}
		}
	}
	want := "message_start content_block_start content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
}

func TestProviderErrorsBecomeOpenAIErrors(t *testing.T) {
	cases := []struct {
		name, status, body string
		want               string
	}{
		{"anthropic", "429", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, `{"error":{"message":"slow down","type":"rate_limit_error","code":null}}`},
		{"openai kept", "401", `{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`, `{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`},
		{"plain text", "502", "upstream connect error", `{"error":{"message":"upstream connect error","type":"server_error","code":null}}`},
		{"empty", "503", "", `{"error":{"message":"the provider answered status 503","type":"server_error","code":null}}`},
		{"message field", "400", `{"code":1001,"message":"bad input"}`, `{"error":{"message":"bad input","type":"invalid_request_error","code":"1001"}}`},
		{"error string", "404", `{"error":"no such model"}`, `{"error":{"message":"no such model","type":"not_found_error","code":null}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, `{"provider":{"type":"claude","apiTokens":["k"]}}`)
			r := send(t, h, "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
			out, hdrs := respond(t, h, r.id, c.status, "text/plain", c.body)
			if out != c.want {
				t.Errorf("body\n got %s\nwant %s", out, c.want)
			}
			if hdrs["content-type"] != "application/json" || hdrs[":status"] != c.status {
				t.Errorf("headers %v", hdrs)
			}
		})
	}
	// A Claude client gets Anthropic's error shape.
	h := start(t, `{"provider":{"type":"openai","apiTokens":["k"]}}`)
	r := send(t, h, "POST", "/v1/messages", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`)
	out, _ := respond(t, h, r.id, "500", "application/json", `{"error":{"message":"boom","type":"server_error"}}`)
	if out != `{"error":{"message":"boom","type":"api_error"},"type":"error"}` {
		t.Errorf("claude client error %s", out)
	}
}

func TestFailoverMarksATokenUnavailableAndHealthBringsItBack(t *testing.T) {
	h := start(t, `{"provider":{"type":"openai","apiTokens":["t1","t2"],"failover":{"enabled":true,"failureThreshold":2,"healthCheckModel":"gpt-4o-mini"}}}`)
	// Drive failures of t1 until it is out: each request picks a token at
	// random; a 503 counts against t1 only.
	fails := 0
	for i := 0; i < 200 && fails < 2; i++ {
		r := send(t, h, "GET", "/v1/models", "")
		status := "200"
		if r.headers["authorization"] == "Bearer t1" {
			status = "503"
			fails++
		}
		respond(t, h, r.id, status, "application/json", `{}`)
		h.CompleteHttpContext(r.id)
	}
	if fails < 2 {
		t.Fatal("t1 was not picked twice")
	}
	st, _ := loadState("ai-proxy-openai-")
	if len(st.Down) != 1 || st.Down[0] != fingerprint("t1") || st.Check == nil || st.Check.Path != "/v1/chat/completions" {
		t.Fatalf("state %+v", st)
	}
	if !strings.Contains(string(st.Check.Body), `"gpt-4o-mini"`) {
		t.Errorf("health check body %s", st.Check.Body)
	}
	for i := 0; i < 30; i++ {
		r := send(t, h, "GET", "/v1/models", "")
		if r.headers["authorization"] != "Bearer t2" {
			t.Fatalf("request %d used %q", i, r.headers["authorization"])
		}
	}
	// A health-check success (successThreshold 1) brings t1 back.
	var p *providerConfig
	cfg, _ := parseConfig([]byte(`{"provider":{"type":"openai","apiTokens":["t1","t2"],"failover":{"enabled":true,"healthCheckModel":"m"}}}`))
	p = cfg.active
	healthResult(p, fingerprint("t1"), false)
	if st, _ := loadState(p.poolKey); len(st.Down) != 1 {
		t.Fatalf("a failed check brought it back: %+v", st)
	}
	healthResult(p, fingerprint("t1"), true)
	if st, _ := loadState(p.poolKey); len(st.Down) != 0 {
		t.Fatalf("still down: %+v", st)
	}
	// The state holds fingerprints, never the tokens.
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), `"t1"`) {
		t.Errorf("state leaks a token: %s", raw)
	}
}

func TestConsumerSticksToOneTokenForStatefulAPIs(t *testing.T) {
	h := start(t, `{"provider":{"type":"openai","apiTokens":["a","b","c","d"]}}`)
	first := ""
	for i := 0; i < 20; i++ {
		r := send(t, h, "GET", "/v1/files/file-1", "", hdrConsumer, "team-x")
		if first == "" {
			first = r.headers["authorization"]
		} else if r.headers["authorization"] != first {
			t.Fatalf("request %d used %q, first %q", i, r.headers["authorization"], first)
		}
	}
}

func TestNativeAnthropicEndpointsAreNotConverted(t *testing.T) {
	h := start(t, `{"provider":{"type":"deepseek","apiTokens":["k"],"modelMapping":{"*":"deepseek-chat"}}}`)
	body := `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`
	r := send(t, h, "POST", "/v1/messages", body)
	if r.headers[":path"] != "/anthropic/v1/messages" || r.body != `{"model":"deepseek-chat","max_tokens":5,"messages":[{"role":"user","content":"x"}]}` {
		t.Errorf("got %s %s", r.headers[":path"], r.body)
	}
	// The answer is Anthropic's already: not converted.
	answer := `{"type":"message","content":[{"type":"text","text":"hi"}]}`
	if out, _ := respond(t, h, r.id, "200", "application/json", answer); out != answer {
		t.Errorf("answer changed: %s", out)
	}
}

func TestBasePathPrependAndOriginalHost(t *testing.T) {
	h := start(t, `{"provider":{"type":"moonshot","apiTokens":["k"],"basePath":"/gw","basePathHandling":"prepend"}}`)
	r := send(t, h, "GET", "/v1/models", "")
	if r.headers[":path"] != "/gw/v1/models" || r.headers[hdrOriginalHost] != "gw.example.com" || r.headers[":authority"] != "api.moonshot.cn" {
		t.Errorf("headers %v", r.headers)
	}
}

func TestOriginalProtocolKeepsPathAndBody(t *testing.T) {
	h := start(t, `{"provider":{"type":"claude","apiTokens":["k"],"protocol":"original"}}`)
	r := send(t, h, "POST", "/v1/messages?beta=true", `{"model":"m"}`)
	if r.headers[":path"] != "/v1/messages?beta=true" || r.headers[":authority"] != "api.anthropic.com" || r.headers["x-api-key"] != "k" || r.body != `{"model":"m"}` {
		t.Errorf("got %v %s", r.headers, r.body)
	}
}

func TestResponsesNotFromTheUpstreamAreUntouched(t *testing.T) {
	h := start(t, `{"provider":{"type":"claude","apiTokens":["k"]}}`, pdktest.WithProperty([]string{"response", "code_details"}, "upstream_reset"))
	r := send(t, h, "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	if out, _ := respond(t, h, r.id, "503", "text/plain", "upstream connect error"); out != "upstream connect error" {
		t.Errorf("body %q", out)
	}
}

func TestHealthCheckTickSendsAChatCompletionWithTheUnavailableToken(t *testing.T) {
	h := start(t, `{"provider":{"type":"openai","apiTokens":["t1","t2"],"modelMapping":{"probe":"gpt-probe"},
		"failover":{"enabled":true,"failureThreshold":1,"healthCheckInterval":1000,"healthCheckTimeout":300,"healthCheckModel":"probe"}}}`,
		pdktest.WithProperty([]string{"cluster_name"}, "outbound|443||api.openai.com"))
	if p := h.GetTickPeriod(); p != 1000 {
		t.Fatalf("tick period %d", p)
	}
	for i := 0; i < 100; i++ {
		r := send(t, h, "GET", "/v1/models", "")
		if r.headers["authorization"] == "Bearer t1" {
			respond(t, h, r.id, "429", "application/json", `{}`)
			break
		}
		respond(t, h, r.id, "200", "application/json", `{}`)
	}
	if st, _ := loadState("ai-proxy-openai-"); len(st.Down) != 1 {
		t.Fatalf("state %+v", st)
	}
	h.Tick()
	calls := h.GetCalloutAttributesFromContext(proxytest.PluginContextID)
	if len(calls) != 1 {
		t.Fatalf("%d health checks", len(calls))
	}
	c := calls[0]
	hdr := map[string]string{}
	for _, kv := range c.Headers {
		hdr[kv[0]] = kv[1]
	}
	if c.Upstream != "outbound|443||api.openai.com" || hdr[":path"] != "/v1/chat/completions" || hdr[":authority"] != "api.openai.com" ||
		hdr["authorization"] != "Bearer t1" || gjson.GetBytes(c.Body, "model").String() != "gpt-probe" ||
		gjson.GetBytes(c.Body, "messages.0.content").String() != "who are you?" {
		t.Errorf("health check %s %v %s", c.Upstream, hdr, c.Body)
	}
	h.CallOnHttpCallResponse(c.CalloutID, [][2]string{{":status", "200"}}, nil, []byte(`{}`))
	if st, _ := loadState("ai-proxy-openai-"); len(st.Down) != 0 {
		t.Errorf("still down after a healthy check: %+v", st)
	}
	// Nothing is down: the next tick sends nothing (answered callouts are
	// no longer listed).
	h.Tick()
	if n := len(h.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != 0 {
		t.Errorf("%d health checks after recovery", n)
	}
}

func TestRetryOnFailureHoldsTheResponseAndRepliesWithTheRetry(t *testing.T) {
	h := start(t, `{"provider":{"type":"claude","apiTokens":["a","b"],"retryOnFailure":{"enabled":true,"retryOnStatus":["5.."]}}}`,
		pdktest.WithProperty([]string{"cluster_name"}, "outbound|443||api.anthropic.com"))
	r := send(t, h, "POST", "/v1/chat/completions", `{"model":"c","messages":[{"role":"user","content":"x"}]}`)
	sent := r.body
	action := h.CallOnResponseHeaders(r.id, [][2]string{{":status", "503"}, {"content-type", "application/json"}}, false)
	if action != types.ActionPause && action != pdk.StopAllWatermark {
		t.Fatalf("response headers action %v, want the response held", action)
	}
	calls := h.GetCalloutAttributesFromContext(r.id)
	if len(calls) != 1 {
		t.Fatalf("%d retries", len(calls))
	}
	c := calls[0]
	hdr := map[string]string{}
	for _, kv := range c.Headers {
		hdr[kv[0]] = kv[1]
	}
	if hdr["x-api-key"] == r.headers["x-api-key"] || hdr[":path"] != "/v1/messages" || string(c.Body) != sent || c.Upstream != "outbound|443||api.anthropic.com" {
		t.Errorf("retry %s %v %s (first token %s)", c.Upstream, hdr, c.Body, r.headers["x-api-key"])
	}
	h.CallOnHttpCallResponse(c.CalloutID, [][2]string{{":status", "200"}, {"content-type", "application/json"}}, nil,
		[]byte(`{"id":"m","content":[{"type":"text","text":"retried"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`))
	lr := h.GetSentLocalResponse(r.id)
	if lr == nil || lr.StatusCode != 200 || gjson.GetBytes(lr.Data, "choices.0.message.content").String() != "retried" {
		t.Fatalf("reply %+v", lr)
	}
}
