// Package usagescan finds the token-usage values in an LLM response event
// (one SSE event's data, or a whole JSON body) without decoding it: it
// keeps the raw JSON text of each value that usage extraction reads. The
// plugin kit (pdk) merges those values into a Usage. The same scan runs
// in two places: in the guest, and in the host behind the foreign function
// ForeignFunction, which a guest calls so that the scan runs natively
// instead of in Wasm (wire.go).
package usagescan

// The values Fields keeps: one slot per (object, key) pair read.
const (
	Model = iota
	BodyModel
	ResponseModel
	MessageModel
	ModelVersion

	// usage.*
	UsagePromptTokens
	UsageInputTokens
	UsageCompletionTokens
	UsageOutputTokens
	UsageTotalTokens
	UsagePromptDetails
	UsageInputDetails
	UsageCompletionDetails
	UsageOutputDetails
	UsageCacheCreation
	UsageCacheRead
	UsageGeneratedImages

	// response.usage.*
	RespInputTokens
	RespOutputTokens
	RespTotalTokens
	RespInputDetails
	RespOutputDetails

	// usageMetadata.*
	MetaPromptTokens
	MetaCandidatesTokens
	MetaTotalTokens
	MetaPromptDetails
	MetaCandidatesDetails
	MetaCachedContent
	MetaToolUsePrompt
	MetaThoughts

	// message.usage.*
	MsgInputTokens
	MsgOutputTokens

	NumFields
)

// Fields holds the raw JSON text of the values of one event that usage
// extraction reads ("" when absent). It points into the event: copy what
// outlives it.
type Fields [NumFields]string

// set keeps the first occurrence of field f.
func (s *Fields) set(f int, v string) {
	if s[f] == "" {
		s[f] = v
	}
}

// Scan walks the top level of the event and the usage objects in it. A
// key repeated in one object is read in every occurrence that is an
// object, the first value found counting, as with gjson paths.
func (s *Fields) Scan(event string) {
	m, ok := NewMembers(event)
	if !ok {
		return
	}
	for k, v, ok := m.Next(); ok; k, v, ok = m.Next() {
		switch k {
		case "model":
			s.set(Model, v)
		case "modelVersion":
			s.set(ModelVersion, v)
		case "usage":
			s.scanObject(v, UsageKey)
		case "usageMetadata":
			s.scanObject(v, MetaKey)
		case "body":
			if s[BodyModel] == "" {
				s.scanObject(v, bodyKey)
			}
		case "response":
			s.scanObject(v, responseKey)
		case "message":
			s.scanObject(v, messageKey)
		}
	}
}

func bodyKey(k string) int {
	if k == "model" {
		return BodyModel
	}
	return -1
}

func responseKey(k string) int {
	switch k {
	case "model":
		return ResponseModel
	case "usage":
		return ScanResponseUsage
	}
	return -1
}

func messageKey(k string) int {
	switch k {
	case "model":
		return MessageModel
	case "usage":
		return ScanMessageUsage
	}
	return -1
}

// Pseudo-slots of the key maps: the value is an object to scan in turn
// (response.usage, message.usage).
const (
	ScanResponseUsage = NumFields + iota
	ScanMessageUsage
)

// scanObject keeps the fields of obj that field maps to a slot (-1: not
// read); obj is raw JSON, skipped unless an object.
func (s *Fields) scanObject(obj string, field func(key string) int) {
	m, ok := NewMembers(obj)
	if !ok {
		return
	}
	for k, v, ok := m.Next(); ok; k, v, ok = m.Next() {
		switch f := field(k); f {
		case -1:
		case ScanResponseUsage:
			s.scanObject(v, ResponseUsageKey)
		case ScanMessageUsage:
			s.scanObject(v, MessageUsageKey)
		default:
			s.set(f, v)
		}
	}
}

// ResponseUsageKey maps a key of response.usage to its slot (-1: not read).
func ResponseUsageKey(k string) int {
	switch k {
	case "input_tokens":
		return RespInputTokens
	case "output_tokens":
		return RespOutputTokens
	case "total_tokens":
		return RespTotalTokens
	case "input_tokens_details":
		return RespInputDetails
	case "output_tokens_details":
		return RespOutputDetails
	}
	return -1
}

// MessageUsageKey maps a key of message.usage to its slot (-1: not read).
func MessageUsageKey(k string) int {
	switch k {
	case "input_tokens":
		return MsgInputTokens
	case "output_tokens":
		return MsgOutputTokens
	}
	return -1
}

// UsageKey maps a key of usage to its slot (-1: not read).
func UsageKey(k string) int {
	switch k {
	case "prompt_tokens":
		return UsagePromptTokens
	case "input_tokens":
		return UsageInputTokens
	case "completion_tokens":
		return UsageCompletionTokens
	case "output_tokens":
		return UsageOutputTokens
	case "total_tokens":
		return UsageTotalTokens
	case "prompt_tokens_details":
		return UsagePromptDetails
	case "input_tokens_details":
		return UsageInputDetails
	case "completion_tokens_details":
		return UsageCompletionDetails
	case "output_tokens_details":
		return UsageOutputDetails
	case "cache_creation_input_tokens":
		return UsageCacheCreation
	case "cache_read_input_tokens":
		return UsageCacheRead
	case "generated_images":
		return UsageGeneratedImages
	}
	return -1
}

// MetaKey maps a key of usageMetadata to its slot (-1: not read).
func MetaKey(k string) int {
	switch k {
	case "promptTokenCount":
		return MetaPromptTokens
	case "candidatesTokenCount":
		return MetaCandidatesTokens
	case "totalTokenCount":
		return MetaTotalTokens
	case "promptTokensDetails":
		return MetaPromptDetails
	case "candidatesTokensDetails":
		return MetaCandidatesDetails
	case "cachedContentTokenCount":
		return MetaCachedContent
	case "toolUsePromptTokenCount":
		return MetaToolUsePrompt
	case "thoughtsTokenCount":
		return MetaThoughts
	}
	return -1
}

// The fields tried for each value, first existing one wins.
var (
	ModelFields        = [...]int{Model, BodyModel, ResponseModel, MessageModel, ModelVersion}
	InputFields        = [...]int{UsagePromptTokens, UsageInputTokens, RespInputTokens, MetaPromptTokens, MsgInputTokens}
	OutputFields       = [...]int{UsageCompletionTokens, UsageOutputTokens, RespOutputTokens, MetaCandidatesTokens, MsgOutputTokens}
	TotalFields        = [...]int{UsageTotalTokens, RespTotalTokens, MetaTotalTokens}
	InputDetailFields  = [...]int{UsagePromptDetails, RespInputDetails, UsageInputDetails, MetaPromptDetails}
	OutputDetailFields = [...]int{UsageCompletionDetails, RespOutputDetails, UsageOutputDetails, MetaCandidatesDetails}
)

// First returns the raw text of the first of fields that exists.
func (s *Fields) First(fields []int) (string, bool) {
	for _, f := range fields {
		if s[f] != "" {
			return s[f], true
		}
	}
	return "", false
}
