package main

import (
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

// Fuzz tests: no configuration and no body, however malformed, may panic
// the plugin (a panic in a callback fails the request open, which for a
// proxy sends it to the wrong place).

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"provider":{"type":"openai","apiTokens":["k"],"modelMapping":{"a*":"b","~x(.*)":"$1"}}}`,
		`{"providers":[{"id":"a","type":"azure","apiTokens":["k"],"azureServiceUrl":"https://r.openai.azure.com?api-version=v"}],"activeProviderId":"a"}`,
		`{"provider":{"type":"claude","apiTokens":["k"],"failover":{"enabled":true,"healthCheckModel":"m","failoverOnStatus":["5.."]}}}`,
		`{"provider":{"type":"openai","openaiCustomUrl":"::bad"}}`,
		`{"provider":null}`, `[]`, `{"providers":[null]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := decodeConfig(raw)
		if err == nil && cfg == nil {
			t.Fatal("nil configuration without error")
		}
		if err != nil && len(pdk.FieldErrors(err)) == 0 {
			t.Fatal("an error without problems")
		}
	})
}

func FuzzTranslations(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:x"}}]},{"role":"tool","content":"r"}],"tools":[{}],"tool_choice":{}}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"[1]"}}]}]}`,
		`{"system":[{"text":"s"}],"messages":[{"role":"user","content":[{"type":"tool_result","content":[1]}]}],"tool_choice":{"type":"tool"}}`,
		`{"content":[{"type":"tool_use","input":null}],"choices":[{"message":{"tool_calls":[{}]}}]}`,
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = openAIToClaudeRequest(b, "m")
		_, _ = claudeResponseToOpenAI(b, "m")
		_, _ = claudeRequestToOpenAI(b)
		_, _ = openAIResponseToClaude(b, "m")
		_ = openAIErrorBody(500, b)
		_ = claudeErrorBody(400, b)
		var p pdk.SSEParser
		evs := append(p.Feed(b), p.Flush()...)
		_ = newClaudeToOpenAIStream("m").events(evs, true)
		_ = newOpenAIToClaudeStream("m").events(evs, true)
	})
}
