package anthropic

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestMessages(t *testing.T) {
	srv := newServer(t, Options{})
	tests := []struct {
		name      string
		body      string
		wantText  string
		wantStop  string
		wantSeq   string
		wantUsage usage
	}{
		{
			name:      "echo",
			body:      `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Hello, Claude"}]}`,
			wantText:  "Echo: Hello, Claude",
			wantStop:  "end_turn",
			wantUsage: usage{3, 5},
		},
		{
			name:      "system string and blocks count",
			body:      `{"model":"c","max_tokens":100,"system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]}]}`,
			wantText:  "Echo: one two",
			wantStop:  "end_turn",
			wantUsage: usage{3 + 2, 4},
		},
		{
			name:      "max_tokens",
			body:      `{"model":"c","max_tokens":3,"system":"s","messages":[{"role":"user","content":"a b c d"}]}`,
			wantText:  "Echo: a",
			wantStop:  "max_tokens",
			wantUsage: usage{1 + 4, 3},
		},
		{
			name:      "stop sequence",
			body:      `{"model":"c","max_tokens":100,"stop_sequences":["END","c"],"messages":[{"role":"user","content":"a b c d"}]}`,
			wantText:  "E",
			wantStop:  "stop_sequence",
			wantSeq:   "c",
			wantUsage: usage{4, 1},
		},
		{
			name:      "prefill: last user message is echoed",
			body:      `{"model":"c","max_tokens":100,"messages":[{"role":"user","content":"question"},{"role":"assistant","content":"Sure"}]}`,
			wantText:  "Echo: question",
			wantStop:  "end_turn",
			wantUsage: usage{2, 3},
		},
		{
			name:      "tool result",
			body:      `{"model":"c","max_tokens":100,"tools":[{"name":"w","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"weather"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"w","input":{"city":"Oslo"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"cold"}]}]}]}`,
			wantText:  "Tool result: cold",
			wantStop:  "end_turn",
			wantUsage: usage{1 + (1 + 9) + 1, 4},
		},
		{
			name:      "reply words via header-free option default",
			body:      `{"model":"c","max_tokens":100,"messages":[{"role":"user","content":"  "}]}`,
			wantText:  "Echo: (empty)",
			wantStop:  "end_turn",
			wantUsage: usage{1, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, srv, tc.body, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			m := decode[messageObj](t, b)
			if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model == "" {
				t.Errorf("envelope: %s", b)
			}
			if len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text == nil {
				t.Fatalf("content: %s", b)
			}
			if *m.Content[0].Text != tc.wantText {
				t.Errorf("text %q, want %q", *m.Content[0].Text, tc.wantText)
			}
			if m.StopReason == nil || *m.StopReason != tc.wantStop {
				t.Errorf("stop_reason %v, want %q", m.StopReason, tc.wantStop)
			}
			if got := derefOr(m.StopSequence); got != tc.wantSeq {
				t.Errorf("stop_sequence %q, want %q", got, tc.wantSeq)
			}
			if m.Usage != tc.wantUsage {
				t.Errorf("usage %+v, want %+v", m.Usage, tc.wantUsage)
			}
			if !bytes.Contains(b, []byte(`"stop_sequence":`)) {
				t.Error("stop_sequence must be present (null when unset)")
			}

			// The stream carries the same message.
			events, err := postStream(t, srv, strings.Replace(tc.body, `{"model"`, `{"stream":true,"model"`, 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			a := assemble(t, events)
			if a.text != *m.Content[0].Text || derefOr(a.msg.StopReason) != tc.wantStop || derefOr(a.msg.StopSequence) != tc.wantSeq {
				t.Errorf("stream %q %v %v, non-stream %q", a.text, a.msg.StopReason, a.msg.StopSequence, *m.Content[0].Text)
			}
			if a.msg.Usage != m.Usage || a.msg.ID == "" || a.msg.Model != m.Model {
				t.Errorf("stream message %+v, non-stream usage %+v", a.msg, m.Usage)
			}
		})
	}
}

func TestStreamEventSequence(t *testing.T) {
	srv := newServer(t, Options{})
	events, err := postStream(t, srv, `{"model":"c","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b"}]}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := assemble(t, events)
	want := []string{"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if !slices.Equal(a.names, want) {
		t.Errorf("events %v, want %v", a.names, want)
	}
	start := decode[streamEvent](t, []byte(events[0].Data)).Message
	if start.StopReason != nil || len(start.Content) != 0 || start.Usage.InputTokens != 2 {
		t.Errorf("message_start message %+v", start)
	}
	if !a.done || a.text != "Echo: a b" {
		t.Errorf("assembled %+v", a)
	}
}

func TestToolUse(t *testing.T) {
	srv := newServer(t, Options{})
	const tools = `"tools":[{"name":"web_search","type":"web_search_20250305"},{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"]}},{"name":"get_time","input_schema":{"type":"object","properties":{"zone":{"type":"string"}}}}]`
	const msgs = `"messages":[{"role":"user","content":"Weather in Oslo"}]`
	tests := []struct {
		name      string
		choice    string
		wantTool  string
		wantInput string
	}{
		{"first client tool", ``, "get_weather", `{"city":"Oslo","unit":"c"}`},
		{"any", `,"tool_choice":{"type":"any"}`, "get_weather", `{"city":"Oslo","unit":"c"}`},
		{"named", `,"tool_choice":{"type":"tool","name":"get_time"}`, "get_time", `{"zone":"Oslo"}`},
		{"none", `,"tool_choice":{"type":"none"}`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"c","max_tokens":100,` + tools + `,` + msgs + tc.choice + `}`
			_, b := post(t, srv, body, nil)
			m := decode[messageObj](t, b)
			events, err := postStream(t, srv, strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			a := assemble(t, events)
			if tc.wantTool == "" {
				if *m.StopReason != "end_turn" || m.Content[0].Type != "text" {
					t.Fatalf("want text, got %s", b)
				}
				return
			}
			if *m.StopReason != "tool_use" || len(m.Content) != 1 {
				t.Fatalf("got %s", b)
			}
			c := m.Content[0]
			if c.Type != "tool_use" || !strings.HasPrefix(c.ID, "toolu_") || c.Name != tc.wantTool || string(c.Input) != tc.wantInput {
				t.Errorf("tool_use %+v (input %s), want %s %s", c, c.Input, tc.wantTool, tc.wantInput)
			}
			sb := a.msg.Content[0]
			if sb.Type != "tool_use" || !strings.HasPrefix(sb.ID, "toolu_") || sb.Name != c.Name || string(sb.Input) != "{}" {
				t.Errorf("content_block_start %+v", sb)
			}
			if a.json != tc.wantInput || derefOr(a.msg.StopReason) != "tool_use" || a.msg.Usage != m.Usage {
				t.Errorf("stream json %q stop %v usage %+v; non-stream usage %+v", a.json, a.msg.StopReason, a.msg.Usage, m.Usage)
			}
		})
	}
}

func TestCountTokens(t *testing.T) {
	srv := newServer(t, Options{})
	body := `{"model":"c","system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude"}]}`
	resp := do(t, srv, PathCountTokens, body, nil)
	defer resp.Body.Close()
	var got struct {
		InputTokens int `json:"input_tokens"`
	}
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(resp.Body)
	got = decode[struct {
		InputTokens int `json:"input_tokens"`
	}](t, b.Bytes())
	if resp.StatusCode != 200 || got.InputTokens != 3+3 {
		t.Errorf("status %d, %s", resp.StatusCode, b)
	}
	// The same count as a real request reports.
	_, mb := post(t, srv, strings.Replace(body, `{"model":"c",`, `{"model":"c","max_tokens":9,`, 1), nil)
	if m := decode[messageObj](t, mb); m.Usage.InputTokens != got.InputTokens {
		t.Errorf("count_tokens %d, message usage %d", got.InputTokens, m.Usage.InputTokens)
	}
}

func TestDeterministic(t *testing.T) {
	srv := newServer(t, Options{})
	body := `{"model":"c","max_tokens":100,"messages":[{"role":"user","content":"same"}]}`
	_, a := post(t, srv, body, nil)
	_, b := post(t, srv, body, nil)
	if !bytes.Equal(a, b) {
		t.Errorf("same request, different answers:\n%s\n%s", a, b)
	}
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
