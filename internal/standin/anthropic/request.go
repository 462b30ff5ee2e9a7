package anthropic

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// messagesRequest holds the fields of a Messages request the stand-in
// reads; everything else is accepted and ignored.
type messagesRequest struct {
	Model         *string         `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Messages      []message       `json:"messages"`
	System        json.RawMessage `json:"system"`
	Stream        bool            `json:"stream"`
	StopSequences []string        `json:"stop_sequences"`
	Tools         []tool          `json:"tools"`
	ToolChoice    *toolChoice     `json:"tool_choice"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type block struct {
	Type    string          `json:"type"`
	Text    string          `json:"text"`
	Name    string          `json:"name"`
	Input   json.RawMessage `json:"input"`
	Content json.RawMessage `json:"content"` // tool_result: string or blocks
}

type tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// messagesInput is a validated request: the parts the answer depends on.
type messagesInput struct {
	model       string
	stream      bool
	maxTokens   int
	stops       []string
	inputTokens int
	toolResult  bool   // the answer is to tool results
	echo        string // text the answer echoes
	tool        *tool  // set when the answer is a tool call
}

// parseMessages decodes and validates a request, the way Anthropic
// validates it. needMaxTokens is false for count_tokens.
func parseMessages(body []byte, needMaxTokens bool) (*messagesInput, *apiError) {
	var req messagesRequest
	if err := llmcore.Decode(body, &req); err != nil {
		return nil, decodeError(err)
	}
	if req.Model == nil || *req.Model == "" {
		return nil, invalid("model: Field required")
	}
	in := &messagesInput{model: *req.Model, stream: req.Stream, stops: req.StopSequences}
	if needMaxTokens {
		if req.MaxTokens == nil {
			return nil, invalid("max_tokens: Field required")
		}
		if *req.MaxTokens < 1 {
			return nil, invalid("max_tokens: Input should be greater than or equal to 1")
		}
		in.maxTokens = *req.MaxTokens
	}
	if req.Messages == nil {
		return nil, invalid("messages: Field required")
	}
	if len(req.Messages) == 0 {
		return nil, invalid("messages: at least one message is required")
	}
	if len(req.System) > 0 && string(req.System) != "null" {
		text, err := systemText(req.System)
		if err != nil {
			return nil, err
		}
		in.inputTokens += max(llmcore.CountTokens(text), 1)
	}

	texts := make([]string, len(req.Messages))
	results := make([]string, len(req.Messages)) // tool_result text of user messages
	hasResult := make([]bool, len(req.Messages))
	for i, m := range req.Messages {
		param := "messages." + strconv.Itoa(i)
		if m.Role != "user" && m.Role != "assistant" {
			if m.Role == "" {
				return nil, invalid("%s.role: Field required", param)
			}
			return nil, invalid("%s.role: Input should be 'user' or 'assistant'", param)
		}
		c, err := readContent(m.Content, param+".content")
		if err != nil {
			return nil, err
		}
		texts[i], results[i], hasResult[i] = c.text, c.toolResults, c.hasToolResult
		in.inputTokens += max(c.tokens, 1)
	}

	for i, t := range req.Tools {
		if t.Name == "" {
			return nil, invalid("tools.%d.name: Field required", i)
		}
	}
	var chosen *tool
	if len(req.Tools) > 0 {
		chosen = firstCustomTool(req.Tools)
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "any":
		case "none":
			chosen = nil
		case "tool":
			if tc.Name == "" {
				return nil, invalid("tool_choice.tool.name: Field required")
			}
			chosen = nil
			for i := range req.Tools {
				if req.Tools[i].Name == tc.Name {
					chosen = &req.Tools[i]
				}
			}
			if chosen == nil {
				return nil, invalid("tool_choice: tool '%s' is not among the tools", tc.Name)
			}
		default:
			return nil, invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
		}
		if tc.Type != "none" && len(req.Tools) == 0 {
			return nil, invalid("tool_choice: tool_choice may only be specified while providing tools")
		}
	}

	last := len(req.Messages) - 1
	switch {
	case req.Messages[last].Role == "user" && hasResult[last]:
		in.toolResult, in.echo = true, results[last]
	default:
		in.echo = texts[last]
		for i := last; i >= 0; i-- {
			if req.Messages[i].Role == "user" {
				in.echo = texts[i]
				break
			}
		}
		if req.Messages[last].Role == "user" {
			in.tool = chosen
		}
	}
	return in, nil
}

// firstCustomTool returns the first client tool (one with an input schema;
// server tools such as web search have none), or nil.
func firstCustomTool(tools []tool) *tool {
	for i := range tools {
		if len(tools[i].InputSchema) > 0 {
			return &tools[i]
		}
	}
	return nil
}

// content is what a message's content contributes to the answer and usage.
type content struct {
	text          string // text blocks, joined by spaces
	toolResults   string // text of tool_result blocks, joined by spaces
	hasToolResult bool
	tokens        int
}

// readContent reads a message's content: a string or an array of blocks.
func readContent(raw json.RawMessage, param string) (content, *apiError) {
	var c content
	if len(raw) == 0 || string(raw) == "null" {
		return c, invalid("%s: Field required", param)
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &c.text); err != nil {
			return c, invalid("%s: %v", param, err)
		}
		c.tokens = llmcore.CountTokens(c.text)
		return c, nil
	case '[':
	default:
		return c, invalid("%s: Input should be a valid string or a list of content blocks", param)
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return c, invalid("%s: Input should be a valid list of content blocks", param)
	}
	var text, results []string
	for j, b := range blocks {
		switch b.Type {
		case "text":
			text = append(text, b.Text)
			c.tokens += llmcore.CountTokens(b.Text)
		case "tool_use", "server_tool_use":
			c.tokens += llmcore.CountTokens(b.Name) + llmcore.CountTokens(string(b.Input))
		case "tool_result":
			c.hasToolResult = true
			t, err := toolResultText(b.Content, param+"."+strconv.Itoa(j)+".content")
			if err != nil {
				return c, err
			}
			results = append(results, t)
			c.tokens += llmcore.CountTokens(t)
		case "":
			return c, invalid("%s.%d.type: Field required", param, j)
		}
	}
	c.text = strings.Join(text, " ")
	c.toolResults = strings.Join(results, " ")
	return c, nil
}

// toolResultText returns the text of a tool_result's content: a string or
// text blocks.
func toolResultText(raw json.RawMessage, param string) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", invalid("%s: Input should be a valid string or a list of content blocks", param)
	}
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, " "), nil
}

// systemText returns the text of "system": a string or text blocks.
func systemText(raw json.RawMessage) (string, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", invalid("system: Input should be a valid string or a list of text blocks")
	}
	parts := make([]string, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "text" {
			return "", invalid("system.%d.type: Input should be 'text'", i)
		}
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, " "), nil
}
