package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file is attribute evaluation (§6.3.6): reading each configured
// attribute at its source, the built-in fallbacks, streamed-response rules
// and tool-call assembly, formatting and where the value goes.

// evaluate processes the attributes that belong to source; body is the
// request or response body (the whole buffered stream for
// response_streaming_body, possibly nil).
func evaluate(ctx *pdk.Context, cfg *config, source string, body []byte) {
	var events [][]byte
	if source == sourceResponseStreams && body != nil {
		events = sseEvents(body)
	}
	for _, a := range cfg.attrs {
		if !shouldProcess(a, source) {
			continue
		}
		var v any
		if a.Value != "" {
			v = extract(ctx, a, source, body, events)
		}
		if isEmpty(v) && isBuiltin(a.Key) {
			v = builtinValue(ctx, a, source, body, events)
		}
		if isEmpty(v) && a.DefaultValue != "" {
			v = a.DefaultValue
		}
		apply(ctx, cfg, a, v)
	}
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	return ok && s == ""
}

// extract reads the configured value of a at source.
func extract(ctx *pdk.Context, a attribute, source string, body []byte, events [][]byte) any {
	switch source {
	case sourceFixed:
		return a.Value
	case sourceRequestHeader:
		v, _ := ctx.RequestHeader(a.Value)
		return v
	case sourceResponseHeader:
		v, _ := ctx.ResponseHeader(a.Value)
		return v
	case sourceRequestBody, sourceResponseBody:
		if r := gjson.GetBytes(body, a.Value); r.Exists() {
			return r.Value()
		}
		return nil
	case sourceResponseStreams:
		return byRule(events, a.Rule, func(ev []byte) gjson.Result { return gjson.GetBytes(ev, a.Value) })
	}
	return nil
}

// byRule combines a path's values over a stream's events: first existing,
// last existing (replace) or the concatenation of their string forms
// (append). An empty rule is append (Higress: nothing, an error).
func byRule(events [][]byte, rule string, get func([]byte) gjson.Result) any {
	var out any
	var sb strings.Builder
	found := false
	for _, ev := range events {
		r := get(ev)
		if !r.Exists() {
			continue
		}
		switch rule {
		case ruleFirst:
			return r.Value()
		case ruleReplace:
			out = r.Value()
		default:
			sb.WriteString(r.String())
		}
		found = true
	}
	if !found {
		return nil
	}
	if rule == ruleFirst || rule == ruleReplace {
		return out
	}
	return sb.String()
}

// sseEvents splits a buffered stream into the data of its events (the
// event's text when it has no data line).
func sseEvents(body []byte) [][]byte {
	var p pdk.SSEParser
	evs := append(p.Feed(body), p.Flush()...)
	out := make([][]byte, 0, len(evs))
	for _, ev := range evs {
		if ev.Data != nil {
			out = append(out, ev.Data)
		} else {
			out = append(out, ev.Raw)
		}
	}
	return out
}

// builtinValue is the protocol-aware fallback of a built-in key (§6.2.1).
func builtinValue(ctx *pdk.Context, a attribute, source string, body []byte, events [][]byte) any {
	streamed := source == sourceResponseStreams
	switch a.Key {
	case keyQuestion:
		return value(gjson.GetBytes(body, "messages.@reverse.0.content"))
	case keySystem:
		return value(gjson.GetBytes(body, "system"))
	case keyAnswer:
		if streamed {
			return byRule(events, a.Rule, func(ev []byte) gjson.Result {
				if r := gjson.GetBytes(ev, "choices.0.delta.content"); r.Exists() {
					return r
				}
				return gjson.GetBytes(ev, "delta.text")
			})
		}
		if r := gjson.GetBytes(body, "choices.0.message.content"); r.Exists() {
			return r.Value()
		}
		return value(gjson.GetBytes(body, "content.0.text"))
	case keyReasoning:
		if streamed {
			return byRule(events, ruleAppend, func(ev []byte) gjson.Result {
				return gjson.GetBytes(ev, "choices.0.delta.reasoning_content")
			})
		}
		return value(gjson.GetBytes(body, "choices.0.message.reasoning_content"))
	case keyToolCalls:
		if streamed {
			calls := assembleToolCalls(events)
			if len(calls) == 0 {
				return nil
			}
			return calls
		}
		return value(gjson.GetBytes(body, "choices.0.message.tool_calls"))
	case keyReasoningTokens:
		return detail(ctx, pdk.AttrOutputTokenDetails, "reasoning_tokens")
	case keyCachedTokens:
		return detail(ctx, pdk.AttrInputTokenDetails, "cached_tokens")
	case keyInputTokenDetails, keyOutputTokenDetails:
		if m, ok := ctx.Attribute(a.Key); ok {
			if d, ok := m.(map[string]int64); ok && len(d) > 0 {
				b, _ := json.Marshal(d)
				return string(b)
			}
		}
	}
	return nil
}

func value(r gjson.Result) any {
	if !r.Exists() {
		return nil
	}
	return r.Value()
}

func detail(ctx *pdk.Context, attr, key string) any {
	m, _ := ctx.Attribute(attr)
	if d, ok := m.(map[string]int64); ok {
		if n, ok := d[key]; ok {
			return n
		}
	}
	return nil
}

// apply formats v and puts it into ai_log (or its own property) and the
// span, as a asks.
func apply(ctx *pdk.Context, cfg *config, a attribute, v any) {
	if v == nil {
		return // fix: Higress writes a nil value as "<nil>" to spans
	}
	printed := printed(v)
	if len(printed) > cfg.limit {
		half := cfg.limit / 2
		printed = printed[:half] + " [truncated] " + printed[len(printed)-half:]
		v = printed
	}
	if a.ApplyToLog {
		if a.AsSeparateLogField {
			_ = ctx.SetProperty(a.Key, pdk.EscapeJSONString([]byte(printed)))
		} else {
			ctx.SetAttribute(a.Key, v)
		}
	}
	if a.ApplyToSpan && printed != "" {
		name := a.TraceSpanKey
		if name == "" {
			name = a.Key
		}
		_ = ctx.SetTraceTag(name, printed)
	}
}

// printed is a value's text: strings as they are, anything else as JSON.
func printed(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// toolCall is one assembled tool call of a streamed response.
type toolCall struct {
	Index    int          `json:"index"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// assembleToolCalls rebuilds the tool calls of an OpenAI or Anthropic
// stream from its events' data, ordered by index.
func assembleToolCalls(events [][]byte) []toolCall {
	calls := map[int]*toolCall{}
	args := map[int]*strings.Builder{}
	open := map[int]bool{}
	initial := map[int]string{} // Anthropic input given at block start
	get := func(i int) *toolCall {
		c, ok := calls[i]
		if !ok {
			c = &toolCall{Index: i}
			calls[i] = c
			args[i] = &strings.Builder{}
		}
		return c
	}
	for _, ev := range events {
		root := gjson.ParseBytes(ev)
		switch root.Get("type").String() {
		case "content_block_start":
			if root.Get("content_block.type").String() != "tool_use" {
				continue
			}
			i := int(root.Get("index").Int())
			c := get(i)
			c.ID = root.Get("content_block.id").String()
			c.Type = "tool_use"
			c.Function.Name = root.Get("content_block.name").String()
			if in := root.Get("content_block.input"); in.IsObject() {
				initial[i] = in.Raw
			}
			open[i] = true
			continue
		case "content_block_delta":
			i := int(root.Get("index").Int())
			if open[i] {
				if pj := root.Get("delta.partial_json"); pj.Exists() {
					args[i].WriteString(pj.String())
				}
			}
			continue
		case "content_block_stop":
			i := int(root.Get("index").Int())
			if open[i] {
				open[i] = false
				// fix: an initial input is only used when no delta
				// followed (Higress prefixes the deltas with "{}").
				if args[i].Len() > 0 {
					calls[i].Function.Arguments = args[i].String()
				} else {
					calls[i].Function.Arguments = initial[i]
				}
			}
			continue
		}
		for _, tc := range root.Get("choices.0.delta.tool_calls").Array() {
			c := get(int(tc.Get("index").Int()))
			if s := tc.Get("id").String(); s != "" {
				c.ID = s
			}
			if s := tc.Get("type").String(); s != "" {
				c.Type = s
			}
			if s := tc.Get("function.name").String(); s != "" {
				c.Function.Name = s
			}
			args[c.Index].WriteString(tc.Get("function.arguments").String())
			c.Function.Arguments = args[c.Index].String()
		}
	}
	idx := make([]int, 0, len(calls))
	for i := range calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]toolCall, 0, len(idx))
	for _, i := range idx {
		out = append(out, *calls[i])
	}
	return out
}
