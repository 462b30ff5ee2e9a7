package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/standin/llm"
)

// This file runs the plugin as wasm in the real gateway (internal/app,
// in-process, port 0) in front of the LLM stand-in: built with the command
// `make plugins` uses, found through builtin:// resolution
// ($SLUICE_PLUGIN_DIR), and checks the access log's ai_log and the
// plugin's counters on /metrics.

func TestMain(m *testing.M) { os.Exit(plugintest.RunMain(m)) }

// syncBuffer collects the gateway's log lines.
type syncBuffer = plugintest.SyncBuffer

// gw is a gateway running in-process for one test.
type gw struct {
	url       string
	logs      *syncBuffer
	app       *app.App
	accessLog string
}

// startGateway runs sluice with the plugin configured with cfg in front of
// the LLM stand-in.
func startGateway(t *testing.T, cfg string) *gw {
	t.Helper()
	upstream := httptest.NewServer(llm.New(llm.Options{}))
	t.Cleanup(upstream.Close)
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, upstream.URL) + plugintest.PluginDoc("ai-statistics", pluginURL, 200, cfg)
	g := plugintest.Start(t, dir, docs)
	return &gw{url: g.URL, logs: g.Logs, app: g.App, accessLog: g.AccessLog}
}

// post sends a chat request through the gateway.
func post(t *testing.T, url, body string, headers ...string) (int, string) {
	return plugintest.PostChat(t, url, body, headers...)
}

// accessLines waits until the access log has n lines (it is written when
// each stream ends) and returns them decoded.
func accessLines(t *testing.T, g *gw, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(g.accessLog)
		var lines []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("access log line %s: %v", sc.Bytes(), err)
			}
			lines = append(lines, m)
		}
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) < n {
				t.Fatalf("access log has %d lines, want %d", len(lines), n)
			}
			return lines
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metricsText(t *testing.T, g *gw) string {
	t.Helper()
	return plugintest.Metrics(t, g.app.AdminAddr())
}

// counterValue finds sluice_plugin_counter_total{plugin=ai-statistics,
// name=…<suffix>} and returns its value (-1 when absent).
func counterValue(text, suffix string) float64 {
	re := regexp.MustCompile(`(?m)^sluice_plugin_counter_total\{[^}]*name="[^"]*` + regexp.QuoteMeta(suffix) + `"[^}]*\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[0], `plugin="`+pluginName+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			return v
		}
	}
	return -1
}

const e2eConfig = `{"attributes":[
	{"key":"question","apply_to_log":true},
	{"key":"answer","apply_to_log":true},
	{"key":"tenant","value_source":"request_header","value":"x-tenant","apply_to_log":true}]}`

func TestE2EUsageInAILogAndMetrics(t *testing.T) {
	g := startGateway(t, e2eConfig)

	// Non-streaming.
	status, body := post(t, g.url, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`,
		"x-tenant", "acme", "x-mse-consumer", "alice")
	if status != 200 {
		t.Fatalf("chat: %d %s", status, body)
	}
	var resp struct {
		Model string
		Usage struct {
			PromptTokens     float64 `json:"prompt_tokens"`
			CompletionTokens float64 `json:"completion_tokens"`
			TotalTokens      float64 `json:"total_tokens"`
		}
		Choices []struct{ Message struct{ Content string } }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Choices) == 0 || resp.Usage.TotalTokens == 0 {
		t.Fatalf("stand-in answer %s: %v", body, err)
	}

	// Streaming, with usage in the last event.
	status, sbody := post(t, g.url, `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}`)
	if status != 200 || !strings.Contains(sbody, "data: [DONE]") {
		t.Fatalf("streaming chat: %d %s", status, sbody)
	}

	lines := accessLines(t, g, 2)
	for i, want := range []struct {
		respType string
		extra    map[string]any
	}{
		{"normal", map[string]any{"tenant": "acme", "question": "hello there", "answer": resp.Choices[0].Message.Content}},
		{"stream", map[string]any{"question": "hello there", "answer": resp.Choices[0].Message.Content}},
	} {
		log, ok := decodeAILog(lines[i]["ai_log"])
		if !ok {
			t.Fatalf("access log line %d has no ai_log object: %v", i, lines[i])
		}
		exp := map[string]any{
			"model": resp.Model, "input_token": resp.Usage.PromptTokens, "output_token": resp.Usage.CompletionTokens,
			"total_token": resp.Usage.TotalTokens, "response_type": want.respType, "api": "-", "chat_round": 1.0,
		}
		for k, v := range want.extra {
			exp[k] = v
		}
		for k, v := range exp {
			if log[k] != v {
				t.Errorf("line %d: ai_log[%s] = %#v, want %#v", i, k, log[k], v)
			}
		}
		if d, _ := log["llm_service_duration"].(float64); d < 0 || log["llm_service_duration"] == nil {
			t.Errorf("line %d: llm_service_duration %v", i, log["llm_service_duration"])
		}
		if i == 1 && log["llm_first_token_duration"] == nil {
			t.Errorf("stream: no llm_first_token_duration in %v", log)
		}
	}

	text := metricsText(t, g)
	model := ".model." + resp.Model + "."
	for _, tc := range []struct {
		suffix string
		want   float64
	}{
		{model + "consumer.alice.metric.input_token", resp.Usage.PromptTokens},
		{model + "consumer.alice.metric.output_token", resp.Usage.CompletionTokens},
		{model + "consumer.alice.metric.total_token", resp.Usage.TotalTokens},
		{model + "consumer.alice.metric.llm_duration_count", 1},
		{model + "consumer.none.metric.total_token", resp.Usage.TotalTokens},
		{model + "consumer.none.metric.llm_stream_duration_count", 1},
		{model + "consumer.none.metric.llm_duration_count", 1},
	} {
		if got := counterValue(text, tc.suffix); got != tc.want {
			t.Errorf("counter …%s = %v, want %v", tc.suffix, got, tc.want)
		}
	}
	if !strings.Contains(text, `name="route.chat.upstream.`) {
		t.Errorf("/metrics has no route.chat.upstream.… counter:\n%s", grepLines(text, "sluice_plugin_counter_total"))
	}
	if t.Failed() {
		t.Logf("plugin counters:\n%s", grepLines(text, "sluice_plugin_counter_total"))
	}
}

// decodeAILog reads the access log's ai_log field: a JSON object, or the
// property's JSON-escaped object text as a string (Higress's
// "%FILTER_STATE(wasm.ai_log:PLAIN)%" form), escaped once or twice.
func decodeAILog(v any) (map[string]any, bool) {
	for range 3 {
		switch x := v.(type) {
		case map[string]any:
			return x, true
		case string:
			var obj map[string]any
			if json.Unmarshal([]byte(x), &obj) == nil {
				return obj, true
			}
			var s string
			if json.Unmarshal([]byte(`"`+x+`"`), &s) != nil {
				return nil, false
			}
			v = s
		default:
			return nil, false
		}
	}
	return nil, false
}

func grepLines(text, s string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestE2EConfigErrorNamesTheField(t *testing.T) {
	g := startGateway(t, `{"attributes":[{"key":"a","value_source":"response_streaming_body","value":"id","rule":"last"}]}`)
	want := `[ai-statistics] [nil] [nil] configure: attributes[0].rule: value of rule must be one of [nil, first, replace, append]`
	if !strings.Contains(g.logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
	plugins := plugintest.PluginStates(t, g.app.AdminAddr())
	if len(plugins) != 1 || plugins[0].Name != pluginName || plugins[0].State != "failed" {
		t.Errorf("config_dump plugins %+v, want %s failed", plugins, pluginName)
	}
}
