package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file serves Claude clients (Anthropic's /v1/messages) from a
// provider that only speaks OpenAI's chat completions (plugins-C.md §6.9,
// §6.11 "Inbound Claude clients"): the request is converted to a chat
// completion, the answer and its stream back to Anthropic's format.

// claudeRequestToOpenAI converts a Messages API request.
func claudeRequestToOpenAI(body []byte) ([]byte, error) {
	root := gjson.ParseBytes(body)
	out := map[string]any{"model": root.Get("model").String()}
	var msgs []map[string]any
	if s := root.Get("system"); s.Exists() {
		text := s.String()
		if s.IsArray() {
			text = ""
			for i, b := range s.Array() {
				if i > 0 {
					text += "\n"
				}
				text += b.Get("text").String()
			}
		}
		msgs = append(msgs, map[string]any{"role": "system", "content": text})
	}
	list := root.Get("messages")
	if !list.IsArray() || len(list.Array()) == 0 {
		return nil, errors.New("messages: must be a non-empty list")
	}
	for i, m := range list.Array() {
		role := m.Get("role").String()
		if role != "user" && role != "assistant" {
			return nil, fmt.Errorf("messages[%d].role: must be user or assistant, not %q", i, role)
		}
		c := m.Get("content")
		if c.Type == gjson.String {
			msgs = append(msgs, map[string]any{"role": role, "content": c.String()})
			continue
		}
		if !c.IsArray() {
			return nil, fmt.Errorf("messages[%d].content: must be a string or a list of blocks", i)
		}
		var parts []map[string]any
		var calls []map[string]any
		text := ""
		for _, b := range c.Array() {
			switch b.Get("type").String() {
			case "text":
				parts = append(parts, map[string]any{"type": "text", "text": b.Get("text").String()})
				text += b.Get("text").String()
			case "image":
				src := b.Get("source")
				u := src.Get("url").String()
				if src.Get("type").String() == "base64" {
					u = "data:" + src.Get("media_type").String() + ";base64," + src.Get("data").String()
				}
				parts = append(parts, map[string]any{"type": "image_url", "image_url": map[string]any{"url": u}})
			case "tool_use":
				input := b.Get("input").Raw
				if input == "" {
					input = "{}"
				}
				calls = append(calls, map[string]any{"id": b.Get("id").String(), "type": "function",
					"function": map[string]any{"name": b.Get("name").String(), "arguments": input}})
			case "tool_result":
				rc := b.Get("content")
				rtext := rc.String()
				if rc.IsArray() {
					rtext = textOf(rc)
				}
				msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": b.Get("tool_use_id").String(), "content": rtext})
			}
		}
		switch {
		case role == "assistant":
			msg := map[string]any{"role": "assistant", "content": text}
			if len(calls) > 0 {
				msg["tool_calls"] = calls
				if text == "" {
					msg["content"] = nil
				}
			}
			msgs = append(msgs, msg)
		case len(parts) > 0:
			msgs = append(msgs, map[string]any{"role": "user", "content": parts})
		}
	}
	out["messages"] = msgs
	if v := root.Get("max_tokens"); v.Exists() {
		out["max_tokens"] = v.Int()
	}
	if v := root.Get("stop_sequences"); v.IsArray() && len(v.Array()) > 0 {
		out["stop"] = json.RawMessage(v.Raw)
	}
	for _, k := range []string{"temperature", "top_p"} {
		if v := root.Get(k); v.Exists() {
			out[k] = json.RawMessage(v.Raw)
		}
	}
	if root.Get("stream").Bool() {
		out["stream"] = true
		out["stream_options"] = map[string]any{"include_usage": true}
	}
	var tools []map[string]any
	for _, t := range root.Get("tools").Array() {
		schema := json.RawMessage(t.Get("input_schema").Raw)
		if len(schema) == 0 {
			continue // server tools have no schema
		}
		tools = append(tools, map[string]any{"type": "function", "function": map[string]any{
			"name": t.Get("name").String(), "description": t.Get("description").String(), "parameters": schema}})
	}
	if len(tools) > 0 {
		out["tools"] = tools
	}
	if tc := root.Get("tool_choice"); tc.IsObject() {
		switch tc.Get("type").String() {
		case "auto":
			out["tool_choice"] = "auto"
		case "any":
			out["tool_choice"] = "required"
		case "none":
			out["tool_choice"] = "none"
		case "tool":
			out["tool_choice"] = map[string]any{"type": "function", "function": map[string]any{"name": tc.Get("name").String()}}
		}
		if d := tc.Get("disable_parallel_tool_use"); d.Exists() {
			out["parallel_tool_calls"] = !d.Bool()
		}
	}
	return json.Marshal(out)
}

// stopReason maps OpenAI's finish_reason to Anthropic's stop_reason.
func stopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// openAIResponseToClaude converts a chat completion to a Messages answer.
func openAIResponseToClaude(body []byte, model string) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, errors.New("the provider's answer is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	msg := root.Get("choices.0.message")
	content := []map[string]any{}
	if t := msg.Get("content").String(); t != "" {
		content = append(content, map[string]any{"type": "text", "text": t})
	}
	for _, c := range msg.Get("tool_calls").Array() {
		var input any = map[string]any{}
		if a := c.Get("function.arguments").String(); gjson.Valid(a) && gjson.Parse(a).IsObject() {
			input = json.RawMessage(a)
		}
		content = append(content, map[string]any{"type": "tool_use", "id": c.Get("id").String(), "name": c.Get("function.name").String(), "input": input})
	}
	if model == "" {
		model = root.Get("model").String()
	}
	return json.Marshal(map[string]any{
		"id": root.Get("id").String(), "type": "message", "role": "assistant", "model": model, "content": content,
		"stop_reason": stopReason(root.Get("choices.0.finish_reason").String()), "stop_sequence": nil,
		"usage": map[string]int64{"input_tokens": root.Get("usage.prompt_tokens").Int(), "output_tokens": root.Get("usage.completion_tokens").Int()},
	})
}

// openAIToClaudeStream converts OpenAI chunks to Anthropic's event stream.
type openAIToClaudeStream struct {
	model   string
	started bool
	// open is the type of the open content block ("" none); index its
	// index, next the next block's index.
	open        string
	index, next int
	toolIndex   int // OpenAI tool call index of the open tool block
	stop        string
	input, out  int64
	done        bool
}

func newOpenAIToClaudeStream(model string) *openAIToClaudeStream {
	return &openAIToClaudeStream{model: model, toolIndex: -1}
}

func sseEvent(typ string, v any) []byte {
	b, _ := json.Marshal(v)
	out := append([]byte("event: "+typ+"\ndata: "), b...)
	return append(out, "\n\n"...)
}

func (s *openAIToClaudeStream) closeBlock() []byte {
	if s.open == "" {
		return nil
	}
	s.open = ""
	return sseEvent("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.index})
}

func (s *openAIToClaudeStream) openBlock(typ string, block map[string]any) []byte {
	out := s.closeBlock()
	s.open, s.index = typ, s.next
	s.next++
	return append(out, sseEvent("content_block_start", map[string]any{"type": "content_block_start", "index": s.index, "content_block": block})...)
}

func (s *openAIToClaudeStream) finish() []byte {
	if s.done {
		return nil
	}
	s.done = true
	out := s.closeBlock()
	if s.stop == "" {
		s.stop = "end_turn"
	}
	out = append(out, sseEvent("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": s.stop, "stop_sequence": nil},
		"usage": map[string]int64{"input_tokens": s.input, "output_tokens": s.out}})...)
	return append(out, sseEvent("message_stop", map[string]any{"type": "message_stop"})...)
}

// events converts complete OpenAI events.
func (s *openAIToClaudeStream) events(evs []pdk.SSEEvent, eos bool) []byte {
	var out []byte
	for _, ev := range evs {
		if ev.Data == nil {
			continue
		}
		if string(ev.Data) == "[DONE]" {
			out = append(out, s.finish()...)
			continue
		}
		if !gjson.ValidBytes(ev.Data) {
			continue
		}
		d := gjson.ParseBytes(ev.Data)
		if !s.started {
			s.started = true
			out = append(out, sseEvent("message_start", map[string]any{"type": "message_start", "message": map[string]any{
				"id": d.Get("id").String(), "type": "message", "role": "assistant", "model": s.model, "content": []any{},
				"stop_reason": nil, "stop_sequence": nil, "usage": map[string]int64{"input_tokens": 0, "output_tokens": 0}}})...)
		}
		if u := d.Get("usage"); u.IsObject() {
			s.input, s.out = u.Get("prompt_tokens").Int(), u.Get("completion_tokens").Int()
		}
		ch := d.Get("choices.0")
		if !ch.Exists() {
			continue
		}
		delta := ch.Get("delta")
		if r := delta.Get("reasoning_content"); r.Type == gjson.String && r.String() != "" {
			if s.open != "thinking" {
				out = append(out, s.openBlock("thinking", map[string]any{"type": "thinking", "thinking": ""})...)
			}
			out = append(out, sseEvent("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
				"delta": map[string]any{"type": "thinking_delta", "thinking": r.String()}})...)
		}
		if t := delta.Get("content"); t.Type == gjson.String && t.String() != "" {
			if s.open != "text" {
				out = append(out, s.openBlock("text", map[string]any{"type": "text", "text": ""})...)
			}
			out = append(out, sseEvent("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
				"delta": map[string]any{"type": "text_delta", "text": t.String()}})...)
		}
		for _, tc := range delta.Get("tool_calls").Array() {
			i := int(tc.Get("index").Int())
			if s.open != "tool_use" || i != s.toolIndex {
				s.toolIndex = i
				out = append(out, s.openBlock("tool_use", map[string]any{"type": "tool_use", "id": tc.Get("id").String(),
					"name": tc.Get("function.name").String(), "input": map[string]any{}})...)
			}
			if a := tc.Get("function.arguments").String(); a != "" {
				out = append(out, sseEvent("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
					"delta": map[string]any{"type": "input_json_delta", "partial_json": a}})...)
			}
		}
		if f := ch.Get("finish_reason"); f.Type == gjson.String {
			s.stop = stopReason(f.String())
			out = append(out, s.closeBlock()...)
		}
	}
	if eos && s.started {
		out = append(out, s.finish()...)
	}
	return out
}
