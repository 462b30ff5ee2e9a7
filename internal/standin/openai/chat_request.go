package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// chatRequest holds the fields of a chat completion request the stand-in
// reads; everything else is accepted and ignored.
type chatRequest struct {
	Model               *string         `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []toolCall      `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// chatInput is a validated request: the parts the answer depends on.
type chatInput struct {
	model        string
	stream       bool
	includeUsage bool
	maxTokens    int // 0: no limit
	stops        []string
	texts        []string // the text of each message
	promptTokens int
	// reply source
	lastRole string
	echo     string // text the answer echoes
	// tool call, when the answer is one
	tool *chatTool
}

var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// parseChat decodes and validates a request, the way OpenAI validates it.
func parseChat(body []byte) (*chatInput, *apiError) {
	var req chatRequest
	if err := llmcore.Decode(body, &req); err != nil {
		return nil, decodeError(err)
	}
	if req.Model == nil || *req.Model == "" {
		return nil, invalid("", "", "you must provide a model parameter")
	}
	if req.Messages == nil {
		return nil, missing("messages")
	}
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	in := &chatInput{model: *req.Model, stream: req.Stream, texts: make([]string, len(req.Messages))}
	if req.StreamOptions != nil {
		if !req.Stream {
			return nil, invalid("stream_options", "", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
		}
		in.includeUsage = req.StreamOptions.IncludeUsage
	}
	if err := checkLimit("max_tokens", req.MaxTokens, &in.maxTokens); err != nil {
		return nil, err
	}
	// max_completion_tokens, checked last, wins.
	if err := checkLimit("max_completion_tokens", req.MaxCompletionTokens, &in.maxTokens); err != nil {
		return nil, err
	}
	stops, err := parseStop(req.Stop)
	if err != nil {
		return nil, err
	}
	in.stops = stops

	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Role == "" {
			return nil, missing(messageParam(i) + ".role")
		}
		if !validRoles[m.Role] {
			return nil, invalid(messageParam(i)+".role", "invalid_value", "Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", m.Role)
		}
		text, err := contentText(m.Content, i)
		if err != nil {
			return nil, err
		}
		if text == nil {
			if m.Role != "assistant" {
				return nil, missing(messageParam(i) + ".content")
			}
			if len(m.ToolCalls) == 0 {
				return nil, invalid(messageParam(i), "", "Invalid '%s': an assistant message must have 'content' or 'tool_calls'.", messageParam(i))
			}
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return nil, missing(messageParam(i) + ".tool_call_id")
		}
		tokens := 0
		if text != nil {
			in.texts[i] = *text
			tokens = llmcore.CountTokens(*text)
		}
		for _, tc := range m.ToolCalls {
			tokens += llmcore.CountTokens(tc.Function.Name) + llmcore.CountTokens(tc.Function.Arguments)
		}
		in.promptTokens += max(tokens, 1)
	}

	for i, t := range req.Tools {
		param := "tools[" + strconv.Itoa(i) + "]"
		if t.Type != "function" {
			return nil, invalid(param+".type", "invalid_value", "Invalid value: '%s'. Supported values are: 'function'.", t.Type)
		}
		if t.Function == nil || t.Function.Name == "" {
			return nil, missing(param + ".function.name")
		}
	}
	tool, aerr := chooseTool(req.Tools, req.ToolChoice)
	if aerr != nil {
		return nil, aerr
	}

	last := len(req.Messages) - 1
	in.lastRole = req.Messages[last].Role
	switch in.lastRole {
	case "tool", "function":
		// Answer every trailing tool result.
		first := last
		for first > 0 && (req.Messages[first-1].Role == "tool" || req.Messages[first-1].Role == "function") {
			first--
		}
		in.echo = strings.Join(in.texts[first:], " ")
	default:
		in.echo = in.texts[last]
		for i := last; i >= 0; i-- {
			if req.Messages[i].Role == "user" {
				in.echo = in.texts[i]
				break
			}
		}
		if in.lastRole == "user" {
			in.tool = tool
		}
	}
	return in, nil
}

// contentText returns the text of a message's content: a string, or the
// text parts of an array joined by spaces. nil means absent or null.
// i is the message's index, for errors.
func contentText(raw json.RawMessage, i int) (*string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' && !bytes.ContainsAny(raw[1:len(raw)-1], "\\\"") {
		// A string without escapes: no need for the decoder.
		s := string(raw[1 : len(raw)-1])
		return &s, nil
	}
	param := messageParam(i) + ".content"
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid(param, "invalid_type", "Invalid '%s': %v.", param, err)
		}
		return &s, nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, invalid(param, "invalid_type", "Invalid type for '%s': expected an array of content parts (objects with a 'type').", param)
		}
		var b strings.Builder
		for j, p := range parts {
			switch p.Type {
			case "text", "refusal":
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(p.Text)
			case "image_url", "input_audio", "file":
			case "":
				return nil, missing(param + "[" + strconv.Itoa(j) + "].type")
			default:
				return nil, invalid(param+"["+strconv.Itoa(j)+"].type", "invalid_value", "Invalid value: '%s'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', and 'file'.", p.Type)
			}
		}
		s := b.String()
		return &s, nil
	}
	return nil, invalid(param, "invalid_type", "Invalid type for '%s': expected one of a string or array of objects, but got %s instead.", param, jsonKind(raw))
}

// parseStop reads "stop": a string, or an array of at most 4 strings.
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("stop", "invalid_type", "Invalid type for 'stop': expected one of a string or array of strings, but got %s instead.", jsonKind(raw))
	}
	if len(list) > 4 {
		return nil, invalid("stop", "array_above_max_length", "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length %d instead.", len(list))
	}
	return list, nil
}

// chooseTool returns the tool a tool call would use, or nil when tool_choice
// is "none" or there are no tools.
func chooseTool(tools []chatTool, choice json.RawMessage) (*chatTool, *apiError) {
	if len(choice) == 0 || string(choice) == "null" {
		if len(tools) == 0 {
			return nil, nil
		}
		return &tools[0], nil
	}
	if len(tools) == 0 {
		return nil, invalid("tool_choice", "", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
	}
	var mode string
	if json.Unmarshal(choice, &mode) == nil {
		switch mode {
		case "none":
			return nil, nil
		case "auto", "required":
			return &tools[0], nil
		}
		return nil, invalid("tool_choice", "invalid_value", "Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", mode)
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(choice, &named); err != nil || named.Type != "function" || named.Function.Name == "" {
		return nil, invalid("tool_choice", "invalid_value", "Invalid 'tool_choice': expected 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.")
	}
	for i := range tools {
		if tools[i].Function.Name == named.Function.Name {
			return &tools[i], nil
		}
	}
	return nil, invalid("tool_choice", "invalid_value", "Invalid value for 'tool_choice': function '%s' is not among the 'tools'.", named.Function.Name)
}

// messageParam names message i in an error's param.
func messageParam(i int) string { return "messages[" + strconv.Itoa(i) + "]" }

func checkLimit(name string, v *int, dst *int) *apiError {
	if v == nil {
		return nil
	}
	if *v < 1 {
		return invalid(name, "integer_below_min_value", "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", name, *v)
	}
	*dst = *v
	return nil
}

func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
