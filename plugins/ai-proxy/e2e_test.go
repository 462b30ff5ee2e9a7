package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/standin/anthropic"
	"github.com/sluicegw/sluice/internal/standin/openai"
	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

// This file runs the plugin as wasm in the real gateway (internal/app,
// in-process, port 0) in front of the OpenAI and Anthropic stand-ins. The
// route's cluster points at a stand-in; the plugin rewrites :authority,
// :path, auth and the body as it would for the real provider, and a
// recording front of the stand-in checks what arrived.

func TestMain(m *testing.M) { os.Exit(plugintest.RunMain(m)) }

// seen is one request as the provider received it.
type seen struct {
	Method, Host, Path string
	Header             http.Header
	Body               string
}

// provider is a stand-in behind a recorder. The recorder maps the
// provider-specific path to the stand-in's own (the part from /v1/ on, or
// /v1/ + the last segments for Azure), and answers 401 to the tokens in
// rejected.
type provider struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []seen
	rejected sync.Map // token → true
}

func newProvider(t *testing.T, h http.Handler) *provider {
	p := &provider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, seen{Method: r.Method, Host: r.Host, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(b)})
		p.mu.Unlock()
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" {
			token = r.Header.Get("x-api-key")
		}
		if _, bad := p.rejected.Load(token); bad {
			r.Header.Set("x-mock-status", "401")
		}
		path := r.URL.Path
		switch {
		case strings.HasPrefix(path, "/openai/deployments/"):
			parts := strings.SplitN(path, "/", 5) // "", openai, deployments, d, rest
			path = "/v1/" + parts[4]
		case strings.Contains(path, "/v1/"):
			path = path[strings.Index(path, "/v1/"):]
		}
		r.URL.Path, r.URL.RawQuery = path, ""
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) requests() []seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seen(nil), p.reqs...)
}

func (p *provider) last(t *testing.T) seen {
	t.Helper()
	r := p.requests()
	if len(r) == 0 {
		t.Fatal("the provider received no request")
	}
	return r[len(r)-1]
}

// startGateway runs sluice with a cluster "provider" for p, a route to it
// and ai-proxy configured with cfg.
func startGateway(t *testing.T, p *provider, cfg string) *plugintest.Gateway {
	t.Helper()
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: e2e}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: %q}
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: provider}
spec:
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: llm}
spec:
  match: {path: {prefix: /}}
  cluster: provider
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: ai-proxy}
spec:
  url: %q
  priority: 100
  defaultConfig: %s
`, dir+"/access.log", strings.TrimPrefix(p.URL, "http://"), pluginURL, cfg)
	return plugintest.Start(t, dir, docs)
}

// call sends method path with body through the gateway.
func call(t *testing.T, g *plugintest.Gateway, method, path, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	return plugintest.Do(t, method, g.URL+path, body, headers...)
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return m
}

// get walks a decoded JSON value by keys and indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func TestE2EOpenAICompatibleProviderGetsHostPathAuthAndMappedModel(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "groq", "apiTokens": ["gsk-1"], "modelMapping": {"gpt-4*": "llama-3.3-70b", "*": "fallback-model"}}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions",
		`{"model":"gpt-4o","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"hello there"}]}`,
		"Authorization", "Bearer client-key")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := get(decode(t, body), "choices", 0, "message", "content"); got != "Echo: hello there" {
		t.Errorf("content %v", got)
	}
	r := p.last(t)
	if r.Host != "api.groq.com" || r.Path != "/openai/v1/chat/completions" {
		t.Errorf("provider got host %q path %q", r.Host, r.Path)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer gsk-1" {
		t.Errorf("authorization %q", a)
	}
	if r.Header.Get("X-Envoy-Original-Path") != "/v1/chat/completions" {
		t.Errorf("x-envoy-original-path %q", r.Header.Get("X-Envoy-Original-Path"))
	}
	want := `{"model":"llama-3.3-70b","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}`
	if r.Body != want {
		t.Errorf("provider body\n got %s\nwant %s", r.Body, want)
	}
	// The "*" default applies to other models.
	call(t, g, "POST", "/v1/chat/completions", `{"model":"other","messages":[{"role":"user","content":"x"}]}`)
	if m := decode(t, p.last(t).Body)["model"]; m != "fallback-model" {
		t.Errorf("default mapping gave %v", m)
	}
}

func TestE2EStreamingForcesIncludeUsage(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "deepseek", "apiTokens": ["sk-d"]}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"deepseek-chat","stream":true,"messages":[{"role":"user","content":"one two"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if u := decode(t, p.last(t).Body)["stream_options"]; fmt.Sprint(u) != "map[include_usage:true]" {
		t.Errorf("provider got stream_options %v", u)
	}
	evs, err := ssetest.Read(strings.NewReader(body))
	if err != nil || len(evs) < 3 || evs[len(evs)-1].Data != "[DONE]" {
		t.Fatalf("events %v err %v", evs, err)
	}
	usage := decode(t, evs[len(evs)-2].Data)["usage"]
	if get(usage, "total_tokens") == nil || get(usage, "prompt_tokens").(float64) < 1 {
		t.Errorf("last chunk usage %v", usage)
	}
	// A client that set include_usage:false keeps it.
	call(t, g, "POST", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"x"}]}`)
	if u := decode(t, p.last(t).Body)["stream_options"]; fmt.Sprint(u) != "map[include_usage:false]" {
		t.Errorf("provider got stream_options %v", u)
	}
}

func TestE2EModelsAndEmbeddingsPassThrough(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{Model: "served-model"}))
	g := startGateway(t, p, `{"provider": {"type": "mistral", "apiTokens": ["m-1"], "modelMapping": {"text-embedding-3-small": "mistral-embed"}}}`)
	resp, body := call(t, g, "POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hello"}`)
	if resp.StatusCode != 200 || get(decode(t, body), "data", 0, "object") != "embedding" {
		t.Fatalf("embeddings: %d %s", resp.StatusCode, body)
	}
	if r := p.last(t); r.Path != "/v1/embeddings" || decode(t, r.Body)["model"] != "mistral-embed" {
		t.Errorf("provider got %s %s", r.Path, r.Body)
	}
	// mistral has no /v1/models: a 404 in OpenAI's shape, and nothing is sent.
	n := len(p.requests())
	resp, body = call(t, g, "GET", "/v1/models", "")
	if resp.StatusCode != 404 || get(decode(t, body), "error", "code") != detailUnsupportedAPI {
		t.Errorf("models on mistral: %d %s", resp.StatusCode, body)
	}
	if len(p.requests()) != n {
		t.Error("the unsupported request reached the provider")
	}

	g2 := startGateway(t, p, `{"provider": {"type": "openai", "apiTokens": ["sk-o"]}}`)
	resp, body = call(t, g2, "GET", "/v1/models", "")
	if resp.StatusCode != 200 || get(decode(t, body), "data", 0, "id") != "served-model" {
		t.Errorf("models: %d %s", resp.StatusCode, body)
	}
	if r := p.last(t); r.Host != "api.openai.com" || r.Path != "/v1/models" || r.Header.Get("Authorization") != "Bearer sk-o" {
		t.Errorf("provider got %+v", r)
	}
}

func TestE2EAzureDeploymentFromModelAndAPIKey(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "azure", "apiTokens": ["az-1"],
		"azureServiceUrl": "https://res.openai.azure.com?api-version=2024-10-21", "modelMapping": {"gpt-4o": "prod-gpt4o"}}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"developer","content":"d"},{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer client")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := p.last(t)
	if r.Host != "res.openai.azure.com" || r.Path != "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21" {
		t.Errorf("provider got host %q path %q", r.Host, r.Path)
	}
	if r.Header.Get("Api-Key") != "az-1" {
		t.Errorf("api-key %q", r.Header.Get("Api-Key"))
	}
	// Azure knows the developer role: it is kept.
	if role := get(decode(t, r.Body), "messages", 0, "role"); role != "developer" {
		t.Errorf("role %v", role)
	}
}

func TestE2EClaudeTranslation(t *testing.T) {
	p := newProvider(t, anthropic.New(anthropic.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "claude", "apiTokens": ["sk-ant"], "claudeVersion": "2023-06-01",
		"modelMapping": {"gpt-4o": "claude-sonnet-4-5"}}}`)
	req := `{"model":"gpt-4o","messages":[{"role":"system","content":"s1"},{"role":"system","content":"s2"},{"role":"user","content":"hello claude"}],"stop":["zzz"]}`
	resp, body := call(t, g, "POST", "/v1/chat/completions", req, "Authorization", "Bearer client")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	out := decode(t, body)
	if out["object"] != "chat.completion" || out["model"] != "claude-sonnet-4-5" ||
		get(out, "choices", 0, "message", "content") != "Echo: hello claude" || get(out, "choices", 0, "finish_reason") != "stop" {
		t.Errorf("answer %s", body)
	}
	u := get(out, "usage").(map[string]any)
	if u["total_tokens"].(float64) != u["prompt_tokens"].(float64)+u["completion_tokens"].(float64) || u["prompt_tokens"].(float64) < 1 {
		t.Errorf("usage %v", u)
	}
	r := p.last(t)
	if r.Host != "api.anthropic.com" || r.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != "sk-ant" ||
		r.Header.Get("Anthropic-Version") != "2023-06-01" || r.Header.Get("Authorization") != "" {
		t.Errorf("provider got %s %s %v", r.Host, r.Path, r.Header)
	}
	sent := decode(t, r.Body)
	if sent["system"] != "s1\ns2" || sent["max_tokens"].(float64) != 4096 || fmt.Sprint(sent["stop_sequences"]) != "[zzz]" {
		t.Errorf("provider body %s", r.Body)
	}

	// Streaming: Anthropic events become OpenAI chunks ending in [DONE].
	resp, body = call(t, g, "POST", "/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"a b c"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stream status %d: %s", resp.StatusCode, body)
	}
	evs, err := ssetest.Read(strings.NewReader(body))
	if err != nil || len(evs) < 4 || evs[len(evs)-1].Data != "[DONE]" {
		t.Fatalf("events %v err %v\n%s", evs, err, body)
	}
	var text strings.Builder
	finish := ""
	var usage any
	for _, ev := range evs[:len(evs)-1] {
		c := decode(t, ev.Data)
		if c["object"] != "chat.completion.chunk" {
			t.Errorf("chunk %s", ev.Data)
		}
		if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			text.WriteString(s)
		}
		if f, ok := get(c, "choices", 0, "finish_reason").(string); ok {
			finish = f
		}
		if c["usage"] != nil {
			usage = c["usage"]
		}
	}
	if text.String() != "Echo: a b c" || finish != "stop" || get(usage, "completion_tokens") == nil {
		t.Errorf("stream text %q finish %q usage %v", text.String(), finish, usage)
	}
}

func TestE2EClaudeToolCall(t *testing.T) {
	p := newProvider(t, anthropic.New(anthropic.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"claude-x","messages":[{"role":"user","content":"weather in Paris"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"required"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	out := decode(t, body)
	if get(out, "choices", 0, "finish_reason") != "tool_calls" ||
		get(out, "choices", 0, "message", "tool_calls", 0, "function", "name") != "get_weather" ||
		get(out, "choices", 0, "message", "tool_calls", 0, "function", "arguments") != `{"city":"Paris"}` {
		t.Errorf("answer %s", body)
	}
	if tc := get(decode(t, p.last(t).Body), "tool_choice", "type"); tc != "any" {
		t.Errorf("tool_choice sent %v", tc)
	}
}

func TestE2EClaudeClientToOpenAICompatibleProvider(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "openai", "apiTokens": ["sk-o"]}}`)
	resp, body := call(t, g, "POST", "/v1/messages", `{"model":"gpt-4o","max_tokens":100,"system":"sys","messages":[{"role":"user","content":[{"type":"text","text":"hi from claude"}]}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	out := decode(t, body)
	if out["type"] != "message" || get(out, "content", 0, "text") != "Echo: hi from claude" || out["stop_reason"] != "end_turn" ||
		get(out, "usage", "output_tokens") == nil {
		t.Errorf("answer %s", body)
	}
	r := p.last(t)
	if r.Path != "/v1/chat/completions" || get(decode(t, r.Body), "messages", 0, "role") != "system" {
		t.Errorf("provider got %s %s", r.Path, r.Body)
	}

	resp, body = call(t, g, "POST", "/v1/messages", `{"model":"gpt-4o","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x y"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stream status %d: %s", resp.StatusCode, body)
	}
	if so := get(decode(t, p.last(t).Body), "stream_options", "include_usage"); so != true {
		t.Errorf("include_usage %v", so)
	}
	evs, err := ssetest.Read(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var text strings.Builder
	for _, ev := range evs {
		names = append(names, ev.Name)
		d := decode(t, ev.Data)
		if s, ok := get(d, "delta", "text").(string); ok {
			text.WriteString(s)
		}
		if ev.Name == "message_delta" && (get(d, "usage", "output_tokens") == nil || get(d, "delta", "stop_reason") != "end_turn") {
			t.Errorf("message_delta %s", ev.Data)
		}
	}
	want := "message_start content_block_start content_block_delta"
	if got := strings.Join(names, " "); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "content_block_stop message_delta message_stop") {
		t.Errorf("events %s", got)
	}
	if text.String() != "Echo: x y" {
		t.Errorf("text %q", text.String())
	}
}

func TestE2EClaudeNativeMessagesPassThrough(t *testing.T) {
	p := newProvider(t, anthropic.New(anthropic.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "claude", "apiTokens": ["sk-ant"], "modelMapping": {"*": "claude-haiku"}}}`)
	resp, body := call(t, g, "POST", "/v1/messages", `{"model":"anything","max_tokens":50,"messages":[{"role":"user","content":"native"}]}`)
	if resp.StatusCode != 200 || decode(t, body)["type"] != "message" || decode(t, body)["model"] != "claude-haiku" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if r := p.last(t); r.Path != "/v1/messages" || decode(t, r.Body)["model"] != "claude-haiku" {
		t.Errorf("provider got %s %s", r.Path, r.Body)
	}
}

func TestE2EProviderErrorsReachTheClientInOpenAIShape(t *testing.T) {
	p := newProvider(t, anthropic.New(anthropic.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "claude", "apiTokens": ["sk-ant"]}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"c","messages":[{"role":"user","content":"x"}]}`, "x-mock-status", "429")
	if resp.StatusCode != 429 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := decode(t, body)
	if get(e, "error", "type") != "rate_limit_error" || get(e, "error", "message") == "" || e["type"] != nil {
		t.Errorf("error body %s", body)
	}

	o := newProvider(t, openai.New(openai.Options{}))
	g2 := startGateway(t, o, `{"provider": {"type": "openai", "apiTokens": ["sk-o"]}}`)
	resp, body = call(t, g2, "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, "x-mock-status", "503")
	if resp.StatusCode != 503 || get(decode(t, body), "error", "type") != "server_error" {
		t.Errorf("openai error: %d %s", resp.StatusCode, body)
	}
}

func TestE2EMalformedJSONIs400(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "openai", "apiTokens": ["sk-o"]}}`)
	resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"m","messages":[`)
	if resp.StatusCode != 400 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if e := decode(t, body); get(e, "error", "code") != detailInvalidJSON || !strings.Contains(get(e, "error", "message").(string), "not valid JSON") {
		t.Errorf("error %s", body)
	}
	if len(p.requests()) != 0 {
		t.Error("the provider received the malformed request")
	}
	if resp, _ := call(t, g, "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 200 {
		t.Errorf("next request: %d", resp.StatusCode)
	}
}

func TestE2EConfigErrorNamesTheField(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	g := startGateway(t, p, `{"provider": {"type": "azure", "apiTokens": ["k"], "azureServiceUrl": "https://x.openai.azure.com/openai/deployments/d"}}`)
	want := "configure: provider.azureServiceUrl: must have an api-version query parameter"
	if !strings.Contains(g.Logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
}

func TestE2EFailoverTakesAFailingTokenOutAndHealthChecksItBack(t *testing.T) {
	p := newProvider(t, openai.New(openai.Options{}))
	p.rejected.Store("bad", true)
	g := startGateway(t, p, `{"provider": {"type": "openai", "apiTokens": ["bad", "good"],
		"failover": {"enabled": true, "failureThreshold": 1, "successThreshold": 1, "healthCheckInterval": 50, "healthCheckModel": "gpt-4o-mini"}}}`)
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	// Until "bad" was picked once (random choice), requests may fail.
	sawFailure := false
	for i := 0; i < 60 && !sawFailure; i++ {
		resp, body := call(t, g, "POST", "/v1/chat/completions", chat)
		if resp.StatusCode == 401 {
			sawFailure = true
			if get(decode(t, body), "error", "code") != "invalid_api_key" {
				t.Errorf("401 body %s", body)
			}
		}
	}
	if !sawFailure {
		t.Fatal("the failing token was never chosen")
	}
	// Now every request uses "good".
	for i := 0; i < 20; i++ {
		if resp, body := call(t, g, "POST", "/v1/chat/completions", chat); resp.StatusCode != 200 {
			t.Fatalf("request %d after failover: %d %s", i, resp.StatusCode, body)
		}
	}
	// Health checks ask with "bad"; once it is accepted again, it is used again.
	p.rejected.Delete("bad")
	// Poll with requests (each one takes a round trip) until the recovered
	// token is chosen again, or give up after 10 s.
	used := false
	deadline := time.Now().Add(10 * time.Second)
	for !used && time.Now().Before(deadline) {
		n := len(p.requests())
		call(t, g, "POST", "/v1/chat/completions", chat)
		for _, r := range p.requests()[n:] {
			if r.Header.Get("Authorization") == "Bearer bad" && strings.Contains(r.Body, `"hi"`) {
				used = true
			}
		}
	}
	if !used {
		t.Fatal("the recovered token was not used again")
	}
	checks := 0
	for _, r := range p.requests() {
		if strings.Contains(r.Body, "who are you?") {
			checks++
			if r.Host != "api.openai.com" || r.Path != "/v1/chat/completions" || decode(t, r.Body)["model"] != "gpt-4o-mini" {
				t.Errorf("health check %+v", r)
			}
		}
	}
	if checks == 0 {
		t.Error("no health check was sent")
	}
}

func TestE2ERetryOnFailureAnswersWithAnotherToken(t *testing.T) {
	p := newProvider(t, anthropic.New(anthropic.Options{}))
	p.rejected.Store("bad", true)
	g := startGateway(t, p, `{"provider": {"type": "claude", "apiTokens": ["bad", "good"],
		"retryOnFailure": {"enabled": true, "maxRetries": 1, "retryOnStatus": ["401"]}}}`)
	retried := 0
	for i := 0; i < 20; i++ {
		n := len(p.requests())
		resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"c","messages":[{"role":"user","content":"retry me"}]}`)
		if resp.StatusCode != 200 || get(decode(t, body), "choices", 0, "message", "content") != "Echo: retry me" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		got := p.requests()[n:]
		if len(got) == 2 {
			retried++
			if got[0].Header.Get("X-Api-Key") != "bad" || got[1].Header.Get("X-Api-Key") != "good" || got[1].Body != got[0].Body || got[1].Path != "/v1/messages" {
				t.Errorf("retry: first %+v then %+v", got[0], got[1])
			}
		}
	}
	if retried == 0 {
		t.Error("no request was retried")
	}
	// Streaming answers of a retry arrive whole, translated.
	for i := 0; i < 20; i++ {
		resp, body := call(t, g, "POST", "/v1/chat/completions", `{"model":"c","stream":true,"messages":[{"role":"user","content":"s"}]}`)
		if resp.StatusCode != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || !strings.Contains(body, `"content":"Echo:"`) {
			t.Fatalf("stream %d: %d %s", i, resp.StatusCode, body)
		}
	}
}
