package pdk

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// This file is token-usage extraction from LLM responses — OpenAI (chat
// completions, responses, images, batches), Anthropic messages, Gemini
// generateContent, Doubao — streaming (SSE) or not (plugins-B.md §0.5).

// Attribute keys the usage extraction reads and writes (wasm-go's names).
const (
	AttrModel              = "model"
	AttrInputToken         = "input_token"
	AttrOutputToken        = "output_token"
	AttrTotalToken         = "total_token"
	AttrInputTokenDetails  = "input_token_details"
	AttrOutputTokenDetails = "output_token_details"
)

// ValueRequestModel is the Context value key under which a plugin may store
// the model named in the request; usage extraction falls back to it when
// a response does not name its model.
const ValueRequestModel = "request_model"

// ModelUnknown is the model reported when neither the response nor the
// request names one.
const ModelUnknown = "unknown"

// Usage is the token usage of one response.
type Usage struct {
	Model        string
	InputTokens  int64
	OutputTokens int64
	// TotalTokens is the provider's total, or input + output + Anthropic
	// cache tokens when it gives none.
	TotalTokens int64
	// InputTokenDetails and OutputTokenDetails hold the providers' detail
	// counters (cached_tokens, reasoning_tokens, Gemini's
	// cached_content_token_count and thoughts_token_count, Anthropic's
	// cache_creation_input_tokens and cache_read_input_tokens, Doubao's
	// generated_images …).
	InputTokenDetails  map[string]int64
	OutputTokenDetails map[string]int64
	// Anthropic prompt-cache counters.
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
}

// The paths tried, first existing one wins.
var (
	modelPaths       = []string{"model", "body.model", "response.model", "message.model", "modelVersion"}
	inputPaths       = []string{"usage.prompt_tokens", "usage.input_tokens", "response.usage.input_tokens", "usageMetadata.promptTokenCount", "message.usage.input_tokens"}
	outputPaths      = []string{"usage.completion_tokens", "usage.output_tokens", "response.usage.output_tokens", "usageMetadata.candidatesTokenCount", "message.usage.output_tokens"}
	totalPaths       = []string{"usage.total_tokens", "response.usage.total_tokens", "usageMetadata.totalTokenCount"}
	inputDetailPaths = []string{"usage.prompt_tokens_details", "response.usage.input_tokens_details", "usage.input_tokens_details", "usageMetadata.promptTokensDetails"}
	outDetailPaths   = []string{"usage.completion_tokens_details", "response.usage.output_tokens_details", "usage.output_tokens_details", "usageMetadata.candidatesTokensDetails"}
)

func firstPath(event []byte, paths []string) (gjson.Result, bool) {
	for _, p := range paths {
		if r := gjson.GetBytes(event, p); r.Exists() {
			return r, true
		}
	}
	return gjson.Result{}, false
}

// HasUsage reports whether an event (one SSE event's data, or a whole JSON
// body) carries usage: it contains "usage" or "usageMetadata".
func HasUsage(event []byte) bool {
	return bytes.Contains(event, []byte(`"usage"`)) || bytes.Contains(event, []byte(`"usageMetadata"`))
}

// ExtractUsage reads the usage in one event. prev is what earlier events
// of the same response reported: its model (unless empty or "unknown") and
// its non-zero token counts fill what this event lacks (Anthropic streams
// input tokens in message_start and output tokens in message_delta).
// requestModel is the last fallback for the model before "unknown". ok is
// false when the event carries no usage (HasUsage).
func ExtractUsage(event []byte, prev Usage, requestModel string) (u Usage, ok bool) {
	if !HasUsage(event) {
		return prev, false
	}
	u = Usage{InputTokenDetails: map[string]int64{}, OutputTokenDetails: map[string]int64{}}
	switch r, found := firstPath(event, modelPaths); {
	case found:
		u.Model = r.String()
	case prev.Model != "" && prev.Model != ModelUnknown:
		u.Model = prev.Model
	case requestModel != "":
		u.Model = requestModel
	default:
		u.Model = ModelUnknown
	}
	if r, found := firstPath(event, inputPaths); found {
		u.InputTokens = r.Int()
	} else if prev.InputTokens > 0 {
		u.InputTokens = prev.InputTokens
	}
	if r, found := firstPath(event, outputPaths); found {
		u.OutputTokens = r.Int()
	} else if prev.OutputTokens > 0 {
		u.OutputTokens = prev.OutputTokens
	}

	if r, found := firstPath(event, inputDetailPaths); found && r.IsObject() {
		r.ForEach(func(k, v gjson.Result) bool {
			u.InputTokenDetails[k.String()] = v.Int()
			return true
		})
	}
	if r := gjson.GetBytes(event, "usageMetadata.cachedContentTokenCount"); r.Exists() {
		u.InputTokenDetails["cached_content_token_count"] = r.Int()
	}
	if r := gjson.GetBytes(event, "usageMetadata.toolUsePromptTokenCount"); r.Exists() {
		u.InputTokenDetails["tool_use_prompt_token_count"] = r.Int()
	}
	if r := gjson.GetBytes(event, "usage.cache_creation_input_tokens"); r.Exists() {
		u.CacheCreationInputTokens = r.Int()
		u.InputTokenDetails["cache_creation_input_tokens"] = r.Int()
	}
	if r := gjson.GetBytes(event, "usage.cache_read_input_tokens"); r.Exists() {
		u.CacheReadInputTokens = r.Int()
		u.InputTokenDetails["cache_read_input_tokens"] = r.Int()
	}

	if r, found := firstPath(event, outDetailPaths); found && r.IsObject() {
		r.ForEach(func(k, v gjson.Result) bool {
			u.OutputTokenDetails[k.String()] = v.Int()
			return true
		})
	}
	if r := gjson.GetBytes(event, "usageMetadata.thoughtsTokenCount"); r.Exists() {
		u.OutputTokenDetails["thoughts_token_count"] = r.Int()
	}
	if r := gjson.GetBytes(event, "usage.generated_images"); r.Exists() {
		u.OutputTokenDetails["generated_images"] = r.Int()
	}

	if r, found := firstPath(event, totalPaths); found {
		u.TotalTokens = r.Int()
	} else {
		u.TotalTokens = u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	}
	return u, true
}

// DefaultMaxUsageBody bounds how much of a non-streaming response a
// UsageTracker keeps to read its usage at the end.
const DefaultMaxUsageBody = 16 << 20

// UsageTracker follows one response chunk by chunk and reports its usage.
// It tells SSE streams from JSON bodies by the first bytes: an SSE stream
// is split into events (also across chunks) and every event with usage
// updates the result, as it arrives; a JSON body is kept until the end of
// the stream and read once (bounded by MaxBody). The zero value is ready;
// use one per response.
type UsageTracker struct {
	// RequestModel is the model the request named, the fallback when the
	// response names none.
	RequestModel string
	// MaxBody bounds a kept JSON body (0: DefaultMaxUsageBody); past it the
	// body's usage is not read.
	MaxBody int

	kind  byte // 0 undecided, 's' SSE, 'j' JSON
	sse   SSEParser
	body  []byte
	over  bool
	usage Usage
	found bool
}

// Feed adds a response chunk; eos marks the last one. It returns the
// usage known so far and whether this chunk brought (new) usage.
func (t *UsageTracker) Feed(chunk []byte, eos bool) (Usage, bool) {
	if t.kind == 0 {
		trimmed := bytes.TrimLeft(chunk, " \t\r\n")
		switch {
		case len(trimmed) == 0 && !eos:
			return t.usage, false
		case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
			t.kind = 'j'
		default:
			t.kind = 's'
		}
	}
	changed := false
	if t.kind == 's' {
		events := t.sse.Feed(chunk)
		if eos {
			events = append(events, t.sse.Flush()...)
		}
		for _, ev := range events {
			data := ev.Data
			if data == nil {
				data = ev.Raw
			}
			if u, ok := ExtractUsage(data, t.usage, t.RequestModel); ok {
				t.usage, t.found, changed = u, true, true
			}
		}
		return t.usage, changed
	}
	max := t.MaxBody
	if max <= 0 {
		max = DefaultMaxUsageBody
	}
	if !t.over {
		if len(t.body)+len(chunk) > max {
			t.over, t.body = true, nil
		} else {
			t.body = append(t.body, chunk...)
		}
	}
	if eos && !t.over {
		if u, ok := ExtractUsage(t.body, t.usage, t.RequestModel); ok {
			t.usage, t.found, changed = u, true, true
		}
		t.body = nil
	}
	return t.usage, changed
}

// Usage returns the usage found so far; ok is false when none was.
func (t *UsageTracker) Usage() (Usage, bool) { return t.usage, t.found }

// TrackUsage feeds a response chunk to the request's UsageTracker and,
// when the chunk brought usage, records it as the attributes model,
// input_token, output_token, total_token, input_token_details and
// output_token_details (read by WriteAILog). Earlier attribute values (set
// by this plugin or from the request) are the fallbacks of
// ExtractUsage, and the ValueRequestModel value is the model of last
// resort. Call it from a streaming response callback with every chunk.
func (c *Context) TrackUsage(chunk []byte, eos bool) (Usage, bool) {
	if c.usage == nil {
		c.usage = &UsageTracker{}
		if m, ok := c.attrs[AttrModel].(string); ok {
			c.usage.usage.Model = m
		}
		if n, ok := c.attrs[AttrInputToken].(int64); ok {
			c.usage.usage.InputTokens = n
		}
		if n, ok := c.attrs[AttrOutputToken].(int64); ok {
			c.usage.usage.OutputTokens = n
		}
	}
	c.usage.RequestModel = c.StringValue(ValueRequestModel, "")
	u, changed := c.usage.Feed(chunk, eos)
	if changed {
		c.SetAttribute(AttrModel, u.Model)
		c.SetAttribute(AttrInputToken, u.InputTokens)
		c.SetAttribute(AttrOutputToken, u.OutputTokens)
		c.SetAttribute(AttrTotalToken, u.TotalTokens)
		c.SetAttribute(AttrInputTokenDetails, u.InputTokenDetails)
		c.SetAttribute(AttrOutputTokenDetails, u.OutputTokenDetails)
	}
	return u, changed
}
