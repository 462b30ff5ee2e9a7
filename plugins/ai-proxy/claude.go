package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file translates OpenAI chat completions to Anthropic's Messages API
// and the answers back (plugins-C.md §6.11 (3)), with the recommended
// fixes: every system message is kept (joined with "\n"), text blocks are
// concatenated, string tool_choice values are mapped, partial SSE events
// are buffered across chunks and the stream ends with data: [DONE].

const defaultClaudeMaxTokens = 4096

type claudeRequest struct {
	Model         string          `json:"model"`
	System        string          `json:"system,omitempty"`
	Messages      []claudeMessage `json:"messages"`
	MaxTokens     int64           `json:"max_tokens"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Temperature   float64         `json:"temperature,omitempty"`
	TopP          float64         `json:"top_p,omitempty"`
	Thinking      *claudeThinking `json:"thinking,omitempty"`
	Tools         []claudeTool    `json:"tools,omitempty"`
	ToolChoice    map[string]any  `json:"tool_choice,omitempty"`
}

type claudeThinking struct {
	Type         string `json:"type"`
	BudgetTokens int64  `json:"budget_tokens"`
}

type claudeMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // string or []map[string]any
}

type claudeTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// textOf returns the text of an OpenAI content (string or parts).
func textOf(c gjson.Result) string {
	if c.Type == gjson.String {
		return c.String()
	}
	var parts []string
	for _, p := range c.Array() {
		if p.Get("type").String() == "text" {
			parts = append(parts, p.Get("text").String())
		}
	}
	return strings.Join(parts, "\n")
}

// claudeBlocks converts OpenAI content parts to Anthropic content blocks.
func claudeBlocks(c gjson.Result) []map[string]any {
	var out []map[string]any
	if c.Type == gjson.String {
		if c.String() != "" {
			out = append(out, map[string]any{"type": "text", "text": c.String()})
		}
		return out
	}
	for _, p := range c.Array() {
		switch p.Get("type").String() {
		case "text":
			out = append(out, map[string]any{"type": "text", "text": p.Get("text").String()})
		case "image_url":
			u := p.Get("image_url.url").String()
			if u == "" {
				u = p.Get("image_url").String()
			}
			if rest, ok := strings.CutPrefix(u, "data:"); ok {
				mime, data, _ := strings.Cut(rest, ",")
				mime = strings.TrimSuffix(mime, ";base64")
				out = append(out, map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": mime, "data": data}})
			} else {
				out = append(out, map[string]any{"type": "image", "source": map[string]any{"type": "url", "url": u}})
			}
		}
	}
	return out
}

// openAIToClaudeRequest translates an OpenAI chat completion request.
func openAIToClaudeRequest(body []byte, model string) ([]byte, error) {
	root := gjson.ParseBytes(body)
	msgs := root.Get("messages")
	if !msgs.IsArray() || len(msgs.Array()) == 0 {
		return nil, errors.New("messages: must be a non-empty list")
	}
	req := claudeRequest{Model: model, Stream: root.Get("stream").Bool()}
	req.MaxTokens = root.Get("max_completion_tokens").Int()
	if req.MaxTokens == 0 {
		req.MaxTokens = root.Get("max_tokens").Int()
	}
	if req.MaxTokens == 0 {
		req.MaxTokens = defaultClaudeMaxTokens
	}
	if s := root.Get("stop"); s.Type == gjson.String {
		req.StopSequences = []string{s.String()}
	} else {
		for _, v := range s.Array() {
			req.StopSequences = append(req.StopSequences, v.String())
		}
	}
	req.Temperature = root.Get("temperature").Float()
	req.TopP = root.Get("top_p").Float()
	effort := root.Get("reasoning_effort").String()
	budget := root.Get("reasoning_max_tokens").Int()
	if effort != "" || budget > 0 {
		if budget == 0 {
			switch effort {
			case "low":
				budget = 1024
			case "high":
				budget = 16384
			default:
				budget = 8192
			}
		}
		budget = max(budget, 1024)
		req.Thinking = &claudeThinking{Type: "enabled", BudgetTokens: budget}
	}
	var system []string
	for i, m := range msgs.Array() {
		role := m.Get("role").String()
		content := m.Get("content")
		switch role {
		case "system", "developer":
			system = append(system, textOf(content))
		case "tool":
			block := map[string]any{"type": "tool_result", "tool_use_id": m.Get("tool_call_id").String(), "content": textOf(content)}
			if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == "user" {
				if blocks, ok := req.Messages[n-1].Content.([]map[string]any); ok && len(blocks) > 0 && blocks[0]["type"] == "tool_result" {
					req.Messages[n-1].Content = append(blocks, block)
					continue
				}
			}
			req.Messages = append(req.Messages, claudeMessage{Role: "user", Content: []map[string]any{block}})
		case "user", "assistant":
			calls := m.Get("tool_calls")
			if role == "assistant" && calls.IsArray() && len(calls.Array()) > 0 {
				blocks := claudeBlocks(content)
				for _, c := range calls.Array() {
					var input any = map[string]any{}
					if args := c.Get("function.arguments").String(); gjson.Valid(args) && gjson.Parse(args).IsObject() {
						input = json.RawMessage(args)
					}
					blocks = append(blocks, map[string]any{"type": "tool_use", "id": c.Get("id").String(),
						"name": c.Get("function.name").String(), "input": input})
				}
				req.Messages = append(req.Messages, claudeMessage{Role: role, Content: blocks})
				continue
			}
			if content.Type == gjson.String {
				req.Messages = append(req.Messages, claudeMessage{Role: role, Content: content.String()})
				continue
			}
			if !content.IsArray() {
				return nil, fmt.Errorf("messages[%d].content: must be a string or a list of parts", i)
			}
			req.Messages = append(req.Messages, claudeMessage{Role: role, Content: claudeBlocks(content)})
		default:
			return nil, fmt.Errorf("messages[%d].role: unknown role %q", i, role)
		}
	}
	req.System = strings.Join(system, "\n")
	for _, t := range root.Get("tools").Array() {
		f := t.Get("function")
		schema := json.RawMessage(f.Get("parameters").Raw)
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		req.Tools = append(req.Tools, claudeTool{Name: f.Get("name").String(), Description: f.Get("description").String(), InputSchema: schema})
	}
	tc := root.Get("tool_choice")
	parallel := root.Get("parallel_tool_calls")
	switch {
	case tc.IsObject():
		req.ToolChoice = map[string]any{"type": "tool", "name": tc.Get("function.name").String()}
	case tc.String() == "auto":
		req.ToolChoice = map[string]any{"type": "auto"}
	case tc.String() == "required":
		req.ToolChoice = map[string]any{"type": "any"}
	case tc.String() == "none":
		req.ToolChoice = map[string]any{"type": "none"}
	}
	if req.ToolChoice != nil && parallel.Exists() && req.ToolChoice["type"] != "none" {
		req.ToolChoice["disable_parallel_tool_use"] = !parallel.Bool()
	}
	return json.Marshal(req)
}

// finishReason maps an Anthropic stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence", "":
		return "stop"
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return stop
}

type openAIToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openAIUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// claudeResponseToOpenAI translates a Messages API answer to a chat
// completion.
func claudeResponseToOpenAI(body []byte, model string) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("the provider's answer is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		return nil, fmt.Errorf("the provider answered with an error: %s", e.Get("message").String())
	}
	var text, reasoning strings.Builder
	var calls []openAIToolCall
	for _, b := range root.Get("content").Array() {
		switch b.Get("type").String() {
		case "text":
			text.WriteString(b.Get("text").String())
		case "thinking":
			reasoning.WriteString(b.Get("thinking").String())
		case "tool_use":
			var c openAIToolCall
			c.ID, c.Type = b.Get("id").String(), "function"
			c.Function.Name = b.Get("name").String()
			c.Function.Arguments = b.Get("input").Raw
			if c.Function.Arguments == "" {
				c.Function.Arguments = "{}"
			}
			calls = append(calls, c)
		}
	}
	msg := map[string]any{"role": "assistant", "content": text.String()}
	if len(calls) > 0 {
		msg["tool_calls"] = calls
		if text.Len() == 0 {
			msg["content"] = nil
		}
	}
	if reasoning.Len() > 0 {
		msg["reasoning_content"] = reasoning.String()
	}
	in, outTok := root.Get("usage.input_tokens").Int(), root.Get("usage.output_tokens").Int()
	if model == "" {
		model = root.Get("model").String()
	}
	return json.Marshal(map[string]any{
		"id": root.Get("id").String(), "object": "chat.completion", "created": time.Now().Unix(), "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finishReason(root.Get("stop_reason").String())}},
		"usage":   openAIUsage{PromptTokens: in, CompletionTokens: outTok, TotalTokens: in + outTok},
	})
}

// claudeToOpenAIStream translates Anthropic's event stream to OpenAI chunks.
type claudeToOpenAIStream struct {
	model         string
	id            string
	created       int64
	input, output int64
	// toolIndex maps a content block index to its tool call index.
	toolIndex map[int64]int
	done      bool
}

func newClaudeToOpenAIStream(model string) *claudeToOpenAIStream {
	return &claudeToOpenAIStream{model: model, created: time.Now().Unix(), toolIndex: map[int64]int{}}
}

func (s *claudeToOpenAIStream) chunk(delta map[string]any, finish any, usage *openAIUsage) []byte {
	c := map[string]any{"id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.model}
	if delta != nil {
		c["choices"] = []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}
	} else {
		c["choices"] = []any{}
	}
	if usage != nil {
		c["usage"] = usage
	}
	b, _ := json.Marshal(c)
	return append(append([]byte("data: "), b...), "\n\n"...)
}

// events translates complete events; at eos the stream is closed with
// data: [DONE] if message_stop did not already.
func (s *claudeToOpenAIStream) events(evs []pdk.SSEEvent, eos bool) []byte {
	var out []byte
	for _, ev := range evs {
		if ev.Data == nil || !gjson.ValidBytes(ev.Data) {
			continue
		}
		d := gjson.ParseBytes(ev.Data)
		typ := d.Get("type").String()
		if typ == "" {
			typ = ev.Event
		}
		switch typ {
		case "message_start":
			s.id = d.Get("message.id").String()
			s.input = d.Get("message.usage.input_tokens").Int()
			s.output = d.Get("message.usage.output_tokens").Int()
			out = append(out, s.chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil)...)
		case "content_block_start":
			b := d.Get("content_block")
			if b.Get("type").String() == "tool_use" {
				i := len(s.toolIndex)
				s.toolIndex[d.Get("index").Int()] = i
				var c openAIToolCall
				c.Index, c.ID, c.Type = &i, b.Get("id").String(), "function"
				c.Function.Name = b.Get("name").String()
				out = append(out, s.chunk(map[string]any{"tool_calls": []openAIToolCall{c}}, nil, nil)...)
			}
		case "content_block_delta":
			dl := d.Get("delta")
			switch dl.Get("type").String() {
			case "text_delta":
				out = append(out, s.chunk(map[string]any{"content": dl.Get("text").String()}, nil, nil)...)
			case "thinking_delta":
				out = append(out, s.chunk(map[string]any{"reasoning_content": dl.Get("thinking").String()}, nil, nil)...)
			case "input_json_delta":
				i := s.toolIndex[d.Get("index").Int()]
				var c openAIToolCall
				c.Index = &i
				c.Function.Arguments = dl.Get("partial_json").String()
				out = append(out, s.chunk(map[string]any{"tool_calls": []openAIToolCall{c}}, nil, nil)...)
			}
		case "message_delta":
			if u := d.Get("usage.output_tokens"); u.Exists() {
				s.output = u.Int()
			}
			if u := d.Get("usage.input_tokens"); u.Exists() && u.Int() > 0 {
				s.input = u.Int()
			}
			out = append(out, s.chunk(map[string]any{}, finishReason(d.Get("delta.stop_reason").String()), nil)...)
		case "message_stop":
			out = append(out, s.chunk(nil, nil, &openAIUsage{PromptTokens: s.input, CompletionTokens: s.output, TotalTokens: s.input + s.output})...)
			out = append(out, "data: [DONE]\n\n"...)
			s.done = true
		case "error":
			e, _ := json.Marshal(map[string]any{"error": map[string]string{"message": d.Get("error.message").String(), "type": d.Get("error.type").String()}})
			out = append(out, "data: "...)
			out = append(out, e...)
			out = append(out, "\n\n"...)
		}
	}
	if eos && !s.done {
		out = append(out, "data: [DONE]\n\n"...)
		s.done = true
	}
	return out
}
