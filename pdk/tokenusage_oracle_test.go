package pdk

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/internal/usagescan"
)

// The gjson-based usage extraction that members replaced, kept as the
// oracle of FuzzExtractUsageMatchesOracle.

type oUsageScan [usagescan.NumFields]gjson.Result

// set keeps the first occurrence of field f.
func (s *oUsageScan) set(f int, v gjson.Result) {
	if !s[f].Exists() {
		s[f] = v
	}
}

// scan walks the top level of the event and the usage objects in it. A
// key repeated in one object is read in every occurrence that is an
// object, the first value found counting, as with gjson paths.
func (s *oUsageScan) scan(event string) {
	root := gjson.Parse(event)
	if !root.IsObject() {
		return
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			s.set(usagescan.Model, v)
		case "modelVersion":
			s.set(usagescan.ModelVersion, v)
		case "usage":
			s.scanObject(v, usagescan.UsageKey)
		case "usageMetadata":
			s.scanObject(v, usagescan.MetaKey)
		case "body":
			if v.IsObject() && !s[usagescan.BodyModel].Exists() {
				s[usagescan.BodyModel] = v.Get("model")
			}
		case "response":
			s.scanObject(v, func(k string) int {
				switch k {
				case "model":
					return usagescan.ResponseModel
				case "usage":
					return usagescan.ScanResponseUsage
				}
				return -1
			})
		case "message":
			s.scanObject(v, func(k string) int {
				switch k {
				case "model":
					return usagescan.MessageModel
				case "usage":
					return usagescan.ScanMessageUsage
				}
				return -1
			})
		}
		return true
	})
}

// scanObject keeps the fields of obj that field maps to a slot (-1: not
// read).
func (s *oUsageScan) scanObject(obj gjson.Result, field func(key string) int) {
	if !obj.IsObject() {
		return
	}
	obj.ForEach(func(k, v gjson.Result) bool {
		switch f := field(k.Str); f {
		case -1:
		case usagescan.ScanResponseUsage:
			s.scanObject(v, usagescan.ResponseUsageKey)
		case usagescan.ScanMessageUsage:
			s.scanObject(v, usagescan.MessageUsageKey)
		default:
			s.set(f, v)
		}
		return true
	})
}

// first returns the first of fields that exists.
func (s *oUsageScan) first(fields []int) (gjson.Result, bool) {
	for _, f := range fields {
		if s[f].Exists() {
			return s[f], true
		}
	}
	return gjson.Result{}, false
}

func oracleExtractUsage(event []byte, prev Usage, requestModel string) (u Usage, ok bool) {
	if !HasUsage(event) {
		return prev, false
	}
	var s oUsageScan
	s.scan(bytesString(event))
	switch r, found := s.first(usagescan.ModelFields[:]); {
	case found:
		u.Model = strings.Clone(r.String())
	case prev.Model != "" && prev.Model != ModelUnknown:
		u.Model = prev.Model
	case requestModel != "":
		u.Model = requestModel
	default:
		u.Model = ModelUnknown
	}
	if r, found := s.first(usagescan.InputFields[:]); found {
		u.InputTokens = r.Int()
	} else if prev.InputTokens > 0 {
		u.InputTokens = prev.InputTokens
	}
	if r, found := s.first(usagescan.OutputFields[:]); found {
		u.OutputTokens = r.Int()
	} else if prev.OutputTokens > 0 {
		u.OutputTokens = prev.OutputTokens
	}

	u.InputTokenDetails = map[string]int64{}
	if r, found := s.first(usagescan.InputDetailFields[:]); found && r.IsObject() {
		oAddDetails(u.InputTokenDetails, r)
	}
	if r := s[usagescan.MetaCachedContent]; r.Exists() {
		u.InputTokenDetails["cached_content_token_count"] = r.Int()
	}
	if r := s[usagescan.MetaToolUsePrompt]; r.Exists() {
		u.InputTokenDetails["tool_use_prompt_token_count"] = r.Int()
	}
	if r := s[usagescan.UsageCacheCreation]; r.Exists() {
		u.CacheCreationInputTokens = r.Int()
		u.InputTokenDetails["cache_creation_input_tokens"] = r.Int()
	}
	if r := s[usagescan.UsageCacheRead]; r.Exists() {
		u.CacheReadInputTokens = r.Int()
		u.InputTokenDetails["cache_read_input_tokens"] = r.Int()
	}

	u.OutputTokenDetails = map[string]int64{}
	if r, found := s.first(usagescan.OutputDetailFields[:]); found && r.IsObject() {
		oAddDetails(u.OutputTokenDetails, r)
	}
	if r := s[usagescan.MetaThoughts]; r.Exists() {
		u.OutputTokenDetails["thoughts_token_count"] = r.Int()
	}
	if r := s[usagescan.UsageGeneratedImages]; r.Exists() {
		u.OutputTokenDetails["generated_images"] = r.Int()
	}

	if r, found := s.first(usagescan.TotalFields[:]); found {
		u.TotalTokens = r.Int()
	} else {
		u.TotalTokens = u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	}
	return u, true
}

// oAddDetails copies a details object's counters into m.
func oAddDetails(m map[string]int64, obj gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		m[strings.Clone(k.String())] = v.Int()
		return true
	})
}

// FuzzExtractUsageMatchesOracle: on valid JSON, ExtractUsage gives what
// the gjson-based walk it replaced gave; on anything it must not panic.
func FuzzExtractUsageMatchesOracle(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","usage":{"prompt_tokens":20,"completion_tokens":12,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":5}}}`,
		`{"id":"x","choices":[{"delta":{"content":"a \"usage\" }{"}}],"usage":null}`,
		`{"type":"message_start","message":{"model":"claude-sonnet-4","usage":{"input_tokens":25,"output_tokens":1}}}`,
		`{"type":"message_delta","usage":{"output_tokens":15,"cache_read_input_tokens":4,"cache_creation_input_tokens":2}}`,
		`{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":4,"totalTokenCount":12,"thoughtsTokenCount":2,"cachedContentTokenCount":1,"toolUsePromptTokenCount":3,"promptTokensDetails":[{"modality":"TEXT","tokenCount":8}]},"modelVersion":"gemini-2.0-flash"}`,
		`{"type":"response.completed","response":{"model":"gpt-4.1","usage":{"input_tokens":9,"output_tokens":7,"total_tokens":16,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":1}}}}`,
		`{"body":{"model":"batch-model","usage":{"prompt_tokens":1}},"usage":{"prompt_tokens":"7","completion_tokens":2.5,"total_tokens":-1,"generated_images":2}}`,
		` { "mo\u0064el" : "esc\"aped" , "us\u0061ge" : { "prompt_tokens" : 99999999999999999999 } } `,
		`{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2,"completion_tokens":3}}`,
		`{"usage":[1,2],"model":{"a":1}}`,
		`{"usage":{"prompt_tokens":1`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		got, gotOK := ExtractUsage(event, Usage{Model: "prev", InputTokens: 1}, "req")
		if !json.Valid(event) {
			return
		}
		want, wantOK := oracleExtractUsage(event, Usage{Model: "prev", InputTokens: 1}, "req")
		if gotOK != wantOK || !sameUsage(&got, &want) {
			t.Fatalf("ExtractUsage(%s)\n got %+v %v\nwant %+v %v", event, got, gotOK, want, wantOK)
		}
	})
}
