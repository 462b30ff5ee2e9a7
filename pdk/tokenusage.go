package pdk

import (
	"bytes"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/internal/usagescan"
	"github.com/sluicegw/sluice/pdk/internal/hostenv"
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

// How ExtractUsage reads an event: for each value, the first of these
// that exists (gjson paths; the same order as wasm-go):
//
//	model:          model, body.model, response.model, message.model, modelVersion
//	input tokens:   usage.prompt_tokens, usage.input_tokens, response.usage.input_tokens,
//	                usageMetadata.promptTokenCount, message.usage.input_tokens
//	output tokens:  usage.completion_tokens, usage.output_tokens, response.usage.output_tokens,
//	                usageMetadata.candidatesTokenCount, message.usage.output_tokens
//	total tokens:   usage.total_tokens, response.usage.total_tokens, usageMetadata.totalTokenCount
//	input details:  usage.prompt_tokens_details, response.usage.input_tokens_details,
//	                usage.input_tokens_details, usageMetadata.promptTokensDetails
//	output details: usage.completion_tokens_details, response.usage.output_tokens_details,
//	                usage.output_tokens_details, usageMetadata.candidatesTokensDetails
//
// plus usageMetadata.{cachedContentTokenCount, toolUsePromptTokenCount,
// thoughtsTokenCount} and usage.{cache_creation_input_tokens,
// cache_read_input_tokens, generated_images}. Rather than one gjson query
// per path (each scanning the event from its start), the event is walked
// once at the top level and then only inside the few objects named above
// (usagescan.Fields), with the same results. The walk keeps raw value text
// (usagescan.Members) and converts only the values it uses: in a Wasm
// guest that costs a fraction of a gjson.ForEach with its closure and a
// Result per member. On Sluice the walk runs in the host (scanUsage).

// rawString is gjson's String of a raw JSON value: the text of a string,
// the raw text of anything else but null.
func rawString(raw string) string {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && !strings.ContainsRune(raw, '\\') {
		return raw[1 : len(raw)-1]
	}
	return gjson.Parse(raw).String()
}

// rawInt is gjson's Int of a raw JSON value.
func rawInt(raw string) int64 {
	var n int64
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c < '0' || c > '9' || i >= 18 {
			return gjson.Parse(raw).Int()
		}
		n = n*10 + int64(c-'0')
	}
	if raw == "" {
		return 0
	}
	return n
}

func isObject(raw string) bool { return raw != "" && raw[0] == '{' }

// HasUsage reports whether an event (one SSE event's data, or a whole JSON
// body) carries usage: it contains "usage" or "usageMetadata".
func HasUsage(event []byte) bool {
	for i := 0; ; {
		j := bytes.Index(event[i:], quotedUsage)
		if j < 0 {
			return false
		}
		i += j + len(quotedUsage)
		rest := event[i:]
		if len(rest) > 0 && rest[0] == '"' || bytes.HasPrefix(rest, metadataQuote) {
			return true
		}
	}
}

var (
	quotedUsage   = []byte(`"usage`)
	metadataQuote = []byte(`Metadata"`)
)

// bytesString views b as a string without copying; b must not change while
// the string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// noHostScan is set once the host failed to scan an event for the kit
// (not Sluice, or an answer this kit cannot read): the kit stops asking.
var noHostScan atomic.Bool

// scanUsage fills s with the usage values of event, scanned by the host
// when it offers the scan and by the guest otherwise. The host's answer
// is the same scan run natively; a guest in Wasm spends tens of
// microseconds per response on it with cold caches (docs/benchmarks.md).
func scanUsage(event []byte, s *usagescan.Fields) {
	if hostenv.ScanUsage && !noHostScan.Load() {
		ret, err := proxywasm.CallForeignFunction(usagescan.ForeignFunction, event)
		if err == nil && usagescan.Decode(bytesString(ret), s) {
			return
		}
		noHostScan.Store(true)
		*s = usagescan.Fields{}
	}
	s.Scan(bytesString(event))
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
	var s usagescan.Fields
	scanUsage(event, &s)
	switch r, found := s.First(usagescan.ModelFields[:]); {
	case found:
		u.Model = strings.Clone(rawString(r))
	case prev.Model != "" && prev.Model != ModelUnknown:
		u.Model = prev.Model
	case requestModel != "":
		u.Model = requestModel
	default:
		u.Model = ModelUnknown
	}
	if r, found := s.First(usagescan.InputFields[:]); found {
		u.InputTokens = rawInt(r)
	} else if prev.InputTokens > 0 {
		u.InputTokens = prev.InputTokens
	}
	if r, found := s.First(usagescan.OutputFields[:]); found {
		u.OutputTokens = rawInt(r)
	} else if prev.OutputTokens > 0 {
		u.OutputTokens = prev.OutputTokens
	}

	u.InputTokenDetails = map[string]int64{}
	if r, found := s.First(usagescan.InputDetailFields[:]); found && isObject(r) {
		addDetails(u.InputTokenDetails, r)
	}
	if r := s[usagescan.MetaCachedContent]; r != "" {
		u.InputTokenDetails["cached_content_token_count"] = rawInt(r)
	}
	if r := s[usagescan.MetaToolUsePrompt]; r != "" {
		u.InputTokenDetails["tool_use_prompt_token_count"] = rawInt(r)
	}
	if r := s[usagescan.UsageCacheCreation]; r != "" {
		u.CacheCreationInputTokens = rawInt(r)
		u.InputTokenDetails["cache_creation_input_tokens"] = rawInt(r)
	}
	if r := s[usagescan.UsageCacheRead]; r != "" {
		u.CacheReadInputTokens = rawInt(r)
		u.InputTokenDetails["cache_read_input_tokens"] = rawInt(r)
	}

	u.OutputTokenDetails = map[string]int64{}
	if r, found := s.First(usagescan.OutputDetailFields[:]); found && isObject(r) {
		addDetails(u.OutputTokenDetails, r)
	}
	if r := s[usagescan.MetaThoughts]; r != "" {
		u.OutputTokenDetails["thoughts_token_count"] = rawInt(r)
	}
	if r := s[usagescan.UsageGeneratedImages]; r != "" {
		u.OutputTokenDetails["generated_images"] = rawInt(r)
	}

	if r, found := s.First(usagescan.TotalFields[:]); found {
		u.TotalTokens = rawInt(r)
	} else {
		u.TotalTokens = u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	}
	return u, true
}

// addDetails copies a details object's counters into m.
func addDetails(m map[string]int64, obj string) {
	it, _ := usagescan.NewMembers(obj)
	for k, v, ok := it.Next(); ok; k, v, ok = it.Next() {
		m[detailKey(k)] = rawInt(v)
	}
}

// detailKey returns k as a string that does not point into the event:
// the common detail counters without an allocation.
func detailKey(k string) string {
	switch k {
	case "cached_tokens":
		return "cached_tokens"
	case "reasoning_tokens":
		return "reasoning_tokens"
	case "audio_tokens":
		return "audio_tokens"
	case "accepted_prediction_tokens":
		return "accepted_prediction_tokens"
	case "rejected_prediction_tokens":
		return "rejected_prediction_tokens"
	case "text_tokens":
		return "text_tokens"
	case "image_tokens":
		return "image_tokens"
	}
	return strings.Clone(k)
}

// sameUsage reports whether a and b hold the same values.
func sameUsage(a, b *Usage) bool {
	return a.Model == b.Model && a.InputTokens == b.InputTokens && a.OutputTokens == b.OutputTokens &&
		a.TotalTokens == b.TotalTokens && a.CacheCreationInputTokens == b.CacheCreationInputTokens &&
		a.CacheReadInputTokens == b.CacheReadInputTokens &&
		sameCounts(a.InputTokenDetails, b.InputTokenDetails) && sameCounts(a.OutputTokenDetails, b.OutputTokenDetails)
}

func sameCounts(a, b map[string]int64) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
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
	// changed: the current Feed brought new usage.
	changed bool
}

// Feed adds a response chunk; eos marks the last one. It returns the
// usage known so far and whether this chunk brought new usage (an event
// repeating the usage already known does not count).
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
	t.changed = false
	if t.kind == 's' {
		// Events are looked at in the parser's buffer, without copies;
		// most carry no usage and cost one byte search.
		t.sse.feedRaw(chunk, t.event)
		if eos {
			t.sse.flushRaw(t.event)
		}
		return t.usage, t.changed
	}
	max := t.MaxBody
	if max <= 0 {
		max = DefaultMaxUsageBody
	}
	if eos && !t.over && len(t.body) == 0 && len(chunk) <= max {
		// The whole body in one chunk (a buffered body callback): read it
		// in place.
		t.extract(chunk)
		return t.usage, t.changed
	}
	if !t.over {
		if len(t.body)+len(chunk) > max {
			t.over, t.body = true, nil
		} else {
			t.body = append(t.body, chunk...)
		}
	}
	if eos && !t.over {
		t.extract(t.body)
		t.body = nil
	}
	return t.usage, t.changed
}

// event reads the usage of one SSE event's text (see SSEParser.feedRaw).
func (t *UsageTracker) event(text []byte) {
	if !HasUsage(text) {
		return
	}
	t.extract(sseData(text))
}

// extract reads the usage of one event or body.
func (t *UsageTracker) extract(data []byte) {
	u, ok := ExtractUsage(data, t.usage, t.RequestModel)
	if !ok || (t.found && sameUsage(&u, &t.usage)) {
		return
	}
	t.usage, t.found, t.changed = u, true, true
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
