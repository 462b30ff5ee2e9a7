package openai

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

func TestChatCompletion(t *testing.T) {
	srv := newServer(t, Options{})
	tests := []struct {
		name       string
		body       string
		headers    map[string]string
		wantText   string
		wantFinish string
		wantUsage  usage
	}{
		{
			name:       "echo of the user message",
			body:       `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, world!"}]}`,
			wantText:   "Echo: Hello, world!",
			wantFinish: "stop",
			wantUsage:  usage{4, 6, 10},
		},
		{
			name:       "last user message wins, every message counts",
			body:       `{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"second  question"}]}`,
			wantText:   "Echo: second question",
			wantFinish: "stop",
			wantUsage:  usage{3 + 1 + 1 + 2, 4, 11},
		},
		{
			name:       "content parts",
			body:       `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look at"},{"type":"image_url","image_url":{"url":"data:,"}},{"type":"text","text":"this"}]}]}`,
			wantText:   "Echo: look at this",
			wantFinish: "stop",
			wantUsage:  usage{3, 5, 8},
		},
		{
			name:       "empty message still counts one prompt token",
			body:       `{"model":"m","messages":[{"role":"user","content":""}]}`,
			wantText:   "Echo: (empty)",
			wantFinish: "stop",
			wantUsage:  usage{1, 5, 6},
		},
		{
			name:       "max_tokens cuts with finish length",
			body:       `{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"one two three"}]}`,
			wantText:   "Echo: one",
			wantFinish: "length",
			wantUsage:  usage{3, 3, 6},
		},
		{
			name:       "max_completion_tokens cuts too",
			body:       `{"model":"m","max_completion_tokens":2,"messages":[{"role":"user","content":"one two"}]}`,
			wantText:   "Echo:",
			wantFinish: "length",
			wantUsage:  usage{2, 2, 4},
		},
		{
			name:       "stop sequence",
			body:       `{"model":"m","stop":["three"],"messages":[{"role":"user","content":"one two three four"}]}`,
			wantText:   "Echo: one two ",
			wantFinish: "stop",
			wantUsage:  usage{4, 4, 8},
		},
		{
			name:       "tool result is acknowledged",
			body:       `{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"22 degrees and sunny"}]}`,
			wantText:   "Tool result: 22 degrees and sunny",
			wantFinish: "stop",
			wantUsage:  usage{2 + (3 + 9) + 4, 7, 25},
		},
		{
			name:       "reply words header",
			body:       `{"model":"m","messages":[{"role":"user","content":"a b"}]}`,
			headers:    map[string]string{"X-Mock-Reply-Words": "5"},
			wantText:   "Echo: a b a b a",
			wantFinish: "stop",
			wantUsage:  usage{2, 7, 9},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, srv, PathChatCompletions, tc.body, tc.headers)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			c := decode[completion](t, body)
			if c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Created == 0 || c.Model == "" {
				t.Errorf("envelope: %s", body)
			}
			if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content == nil {
				t.Fatalf("choices: %s", body)
			}
			if got := *c.Choices[0].Message.Content; got != tc.wantText {
				t.Errorf("content %q, want %q", got, tc.wantText)
			}
			if c.Choices[0].FinishReason != tc.wantFinish {
				t.Errorf("finish_reason %q, want %q", c.Choices[0].FinishReason, tc.wantFinish)
			}
			if c.Usage != tc.wantUsage {
				t.Errorf("usage %+v, want %+v", c.Usage, tc.wantUsage)
			}
		})
	}
}

func TestChatIsDeterministic(t *testing.T) {
	srv := newServer(t, Options{})
	body := `{"model":"m","messages":[{"role":"user","content":"same question"}]}`
	_, a := post(t, srv, PathChatCompletions, body, nil)
	_, b := post(t, srv, PathChatCompletions, body, nil)
	if !bytes.Equal(a, b) {
		t.Errorf("same request, different answers:\n%s\n%s", a, b)
	}
	_, c := post(t, srv, PathChatCompletions, strings.Replace(body, "same", "other", 1), nil)
	if decode[completion](t, a).ID == decode[completion](t, c).ID {
		t.Error("different requests got the same id")
	}
}

// TestChatStreamMatchesNonStream checks the chunk sequence and that a stream
// carries exactly the non-streaming answer and usage.
func TestChatStreamMatchesNonStream(t *testing.T) {
	srv := newServer(t, Options{ChunkWords: 2})
	tests := []struct {
		name string
		body string // without "stream"
	}{
		{"short", `"messages":[{"role":"user","content":"Hello there, world!"}]`},
		{"cut by max_tokens", `"max_tokens":4,"messages":[{"role":"user","content":"a b c d e f"}]`},
		{"unicode and escapes", `"messages":[{"role":"user","content":"naïve \"quotes\" and\nnew lines 日本"}]`},
		{"tool result", `"messages":[{"role":"tool","tool_call_id":"c","content":"42"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, plain := post(t, srv, PathChatCompletions, `{"model":"m",`+tc.body+`}`, nil)
			want := decode[completion](t, plain)

			resp, events, err := postStream(t, srv, `{"model":"m","stream":true,"stream_options":{"include_usage":true},`+tc.body+`}`, nil)
			if err != nil {
				t.Fatalf("stream ended with %v", err)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("Content-Type %q", ct)
			}
			got := parseStream(t, events)
			if !got.done {
				t.Error("no [DONE]")
			}
			if got.content != *want.Choices[0].Message.Content {
				t.Errorf("streamed content %q, non-stream %q", got.content, *want.Choices[0].Message.Content)
			}
			if got.finish != want.Choices[0].FinishReason {
				t.Errorf("finish %q, non-stream %q", got.finish, want.Choices[0].FinishReason)
			}
			if got.usage == nil || *got.usage != want.Usage {
				t.Errorf("stream usage %+v, non-stream %+v", got.usage, want.Usage)
			}

			// Sequence: role chunk, content chunks, finish chunk, usage chunk, [DONE].
			n := len(got.chunks)
			if n < 3 {
				t.Fatalf("only %d chunks", n)
			}
			first := got.chunks[0].Choices[0].Delta
			if first.Role != "assistant" || first.Content == nil || *first.Content != "" {
				t.Errorf("first chunk delta %+v, want role assistant and empty content", first)
			}
			for i, c := range got.chunks {
				if c.Object != "chat.completion.chunk" || c.ID != got.chunks[0].ID || !strings.HasPrefix(c.ID, "chatcmpl-") {
					t.Errorf("chunk %d envelope: %+v", i, c)
				}
				last := i == n-1
				if last != (len(c.Choices) == 0) {
					t.Errorf("chunk %d: only the last chunk has empty choices", i)
				}
				if !last && string(c.Usage) != "null" {
					t.Errorf("chunk %d: usage %s, want null", i, c.Usage)
				}
				if i < n-2 && c.Choices[0].FinishReason != nil {
					t.Errorf("chunk %d has finish_reason before the end", i)
				}
			}
			if fin := got.chunks[n-2].Choices[0]; fin.FinishReason == nil || fin.Delta.Content != nil {
				t.Errorf("finish chunk %+v", fin)
			}
		})
	}
}

func TestChatStreamWithoutUsage(t *testing.T) {
	srv := newServer(t, Options{})
	_, events, err := postStream(t, srv, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := parseStream(t, events)
	if got.usage != nil || !got.done || got.content != "Echo: hi" {
		t.Fatalf("stream %+v", got)
	}
	for _, ev := range events[:len(events)-1] {
		var raw map[string]json.RawMessage
		_ = json.Unmarshal([]byte(ev.Data), &raw)
		if _, ok := raw["usage"]; ok {
			t.Errorf("usage present without include_usage: %s", ev.Data)
		}
	}
}

func TestChatToolCalls(t *testing.T) {
	srv := newServer(t, Options{})
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"location":{"type":"string"},"days":{"type":"integer"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}}}}]`
	tests := []struct {
		name     string
		extra    string
		wantName string // "" means a text answer
		wantArgs string
	}{
		{"first tool by default", tools, "get_weather", `{"days":1,"location":"Paris","unit":"celsius"}`},
		{"auto", tools + `,"tool_choice":"auto"`, "get_weather", `{"days":1,"location":"Paris","unit":"celsius"}`},
		{"named tool", tools + `,"tool_choice":{"type":"function","function":{"name":"get_time"}}`, "get_time", `{"tz":"Paris"}`},
		{"none answers text", tools + `,"tool_choice":"none"`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs := `"messages":[{"role":"user","content":"What is the weather in Paris"}]`
			_, body := post(t, srv, PathChatCompletions, `{"model":"m",`+msgs+`,`+tc.extra+`}`, nil)
			c := decode[completion](t, body)
			ch := c.Choices[0]
			_, events, err := postStream(t, srv, `{"model":"m","stream":true,"stream_options":{"include_usage":true},`+msgs+`,`+tc.extra+`}`, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := parseStream(t, events)
			if tc.wantName == "" {
				if ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 || st.toolCall.ID != "" {
					t.Fatalf("want a text answer, got %s", body)
				}
				return
			}
			if ch.FinishReason != "tool_calls" || st.finish != "tool_calls" {
				t.Errorf("finish %q / stream %q, want tool_calls", ch.FinishReason, st.finish)
			}
			if ch.Message.Content != nil {
				t.Errorf("content %q, want null", *ch.Message.Content)
			}
			if len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("tool_calls: %s", body)
			}
			call := ch.Message.ToolCalls[0]
			if call.Type != "function" || !strings.HasPrefix(call.ID, "call_") || call.Function.Name != tc.wantName || call.Function.Arguments != tc.wantArgs {
				t.Errorf("tool call %+v, want %s(%s)", call, tc.wantName, tc.wantArgs)
			}
			if st.toolCall.Function.Name != tc.wantName || st.toolCall.Function.Arguments != call.Function.Arguments || st.toolCall.Type != "function" || st.toolCall.ID == "" {
				t.Errorf("streamed tool call %+v, non-stream %+v", st.toolCall, call)
			}
			if want := (len(tc.wantArgs) + llmcore.ArgumentFragmentBytes - 1) / llmcore.ArgumentFragmentBytes; st.contentCount != want {
				t.Errorf("arguments came in %d fragments, want %d", st.contentCount, want)
			}
			if st.usage == nil || *st.usage != c.Usage {
				t.Errorf("stream usage %+v, non-stream %+v", st.usage, c.Usage)
			}
		})
	}
}

func TestChatToolCallOnlyAnswersUserTurns(t *testing.T) {
	srv := newServer(t, Options{})
	body := `{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"result text"}]}`
	_, b := post(t, srv, PathChatCompletions, body, nil)
	c := decode[completion](t, b)
	if c.Choices[0].FinishReason != "stop" || *c.Choices[0].Message.Content != "Tool result: result text" {
		t.Fatalf("got %s", b)
	}
}
