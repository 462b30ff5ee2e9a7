package pdk_test

import (
	"reflect"
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

// feedAll feeds chunks to a fresh tracker and returns the final usage.
func feedAll(t *testing.T, requestModel string, chunks ...string) (pdk.Usage, bool) {
	t.Helper()
	tr := pdk.UsageTracker{RequestModel: requestModel}
	for i, c := range chunks {
		tr.Feed([]byte(c), i == len(chunks)-1)
	}
	return tr.Usage()
}

func TestUsageTracker(t *testing.T) {
	cases := []struct {
		name   string
		model  string // request model
		chunks []string
		want   pdk.Usage
	}{
		{name: "OpenAI chat completion, JSON split across chunks",
			chunks: []string{`{"id":"c1","object":"chat.completion","model":"gpt-4o",`, `"choices":[{"message":{"role":"assistant","content":"hi"}}],`,
				`"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":2}}}`},
			want: pdk.Usage{Model: "gpt-4o", InputTokens: 12, OutputTokens: 5, TotalTokens: 17,
				InputTokenDetails: map[string]int64{"cached_tokens": 3}, OutputTokenDetails: map[string]int64{"reasoning_tokens": 2}}},
		{name: "OpenAI stream with include_usage, usage:null until the last event",
			chunks: []string{
				"data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\ndata: {\"model\":\"gpt-4o-mini\",\"choi",
				"ces\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n",
				"\ndata: [DONE]\n\n"},
			want: pdk.Usage{Model: "gpt-4o-mini", InputTokens: 9, OutputTokens: 2, TotalTokens: 11,
				InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}},
		{name: "Anthropic stream: input in message_start, output in message_delta",
			chunks: []string{
				"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n",
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15,\"cache_read_input_tokens\":4}}\n\n",
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
			want: pdk.Usage{Model: "claude-sonnet-4", InputTokens: 25, OutputTokens: 15, TotalTokens: 44, CacheReadInputTokens: 4,
				InputTokenDetails: map[string]int64{"cache_read_input_tokens": 4}, OutputTokenDetails: map[string]int64{}}},
		{name: "Gemini generateContent stream",
			chunks: []string{"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":4,\"totalTokenCount\":14,\"thoughtsTokenCount\":2,\"cachedContentTokenCount\":1},\"modelVersion\":\"gemini-2.0-flash\"}\r\n\r\n"},
			want: pdk.Usage{Model: "gemini-2.0-flash", InputTokens: 8, OutputTokens: 4, TotalTokens: 14,
				InputTokenDetails: map[string]int64{"cached_content_token_count": 1}, OutputTokenDetails: map[string]int64{"thoughts_token_count": 2}}},
		{name: "OpenAI Responses API, the completed event split in many chunks",
			chunks: []string{"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4.1\"}}\n\nevent: response.completed\ndata: {\"type\":\"response.comp",
				"leted\",\"response\":{\"model\":\"gpt-4.1\",\"output\":[],", "\"usage\":{\"input_tokens\":10,\"output_tokens\":3,\"total_tokens\":13,\"input_tokens_details\":{\"cached_tokens\":0}}}}\n\n"},
			want: pdk.Usage{Model: "gpt-4.1", InputTokens: 10, OutputTokens: 3, TotalTokens: 13,
				InputTokenDetails: map[string]int64{"cached_tokens": 0}, OutputTokenDetails: map[string]int64{}}},
		{name: "no model in the response: the request's", model: "qwen-max",
			chunks: []string{`{"usage":{"input_tokens":1,"output_tokens":2}}`},
			want:   pdk.Usage{Model: "qwen-max", InputTokens: 1, OutputTokens: 2, TotalTokens: 3, InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}},
		{name: "Doubao image generation and Gemini tool-use counters",
			chunks: []string{`{"model":"doubao-seedream","usage":{"generated_images":2,"output_tokens":16,"total_tokens":16},"usageMetadata":{"toolUsePromptTokenCount":3}}`},
			want: pdk.Usage{Model: "doubao-seedream", OutputTokens: 16, TotalTokens: 16,
				InputTokenDetails: map[string]int64{"tool_use_prompt_token_count": 3}, OutputTokenDetails: map[string]int64{"generated_images": 2}}},
		{name: "a repeated key: the first object holding the field counts, as with gjson paths",
			chunks: []string{`{"model":"m","model":"n","usage":null,"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":9,"completion_tokens":2}}`},
			want:   pdk.Usage{Model: "m", InputTokens: 1, OutputTokens: 2, TotalTokens: 3, InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}},
		{name: "Anthropic message_start in a JSON body (message.usage)",
			chunks: []string{`{"type":"message_start","message":{"model":"claude-3","usage":{"input_tokens":7,"output_tokens":0}}}`},
			want:   pdk.Usage{Model: "claude-3", InputTokens: 7, TotalTokens: 7, InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}},
		{name: "no model anywhere: unknown",
			chunks: []string{`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`},
			want:   pdk.Usage{Model: "unknown", InputTokens: 1, OutputTokens: 2, TotalTokens: 3, InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := feedAll(t, tc.model, tc.chunks...)
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("usage %+v (found %t)\nwant  %+v", got, ok, tc.want)
			}
		})
	}
}

func TestUsageTrackerReportsAsEventsArrive(t *testing.T) {
	var tr pdk.UsageTracker
	if _, changed := tr.Feed([]byte(`data: {"model":"m","usage":{"prompt_tokens":1,`), false); changed {
		t.Error("usage reported from half an event")
	}
	u, changed := tr.Feed([]byte("\"completion_tokens\":1}}\n\n"), false)
	if !changed || u.TotalTokens != 2 {
		t.Errorf("usage %+v changed %t", u, changed)
	}
	if _, changed := tr.Feed([]byte("data: [DONE]\n\n"), true); changed {
		t.Error("an event without usage changed it")
	}
}

func TestUsageTrackerNoUsage(t *testing.T) {
	if u, ok := feedAll(t, "", `{"object":"list","data":[]}`); ok {
		t.Errorf("found usage %+v", u)
	}
	tr := pdk.UsageTracker{MaxBody: 10}
	tr.Feed([]byte(`{"usage":{"prompt_tokens":1}`), false)
	if _, changed := tr.Feed([]byte(`}`), true); changed {
		t.Error("a JSON body over MaxBody is not read")
	}
}

// An event repeating the usage already known (OpenAI's "usage":null on
// every chunk) does not count as new usage.
func TestUsageTrackerRepeatedUsageIsNotNew(t *testing.T) {
	var tr pdk.UsageTracker
	ev := []byte("data: {\"model\":\"m\",\"choices\":[],\"usage\":null}\n\n")
	if _, changed := tr.Feed(ev, false); !changed {
		t.Error("the first usage event is new")
	}
	if _, changed := tr.Feed(ev, false); changed {
		t.Error("a repeated usage event is reported as new")
	}
	u, changed := tr.Feed([]byte("data: {\"model\":\"m\",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\n"), true)
	if !changed || u.TotalTokens != 3 {
		t.Errorf("usage %+v changed %t", u, changed)
	}
}
