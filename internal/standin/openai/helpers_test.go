package openai

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

func newServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return srv
}

// post sends a JSON body and returns the response with its body read.
func post(t *testing.T, srv *httptest.Server, path, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// postStream sends a request and reads its event stream, returning the
// events and the error that ended the stream.
func postStream(t *testing.T, srv *httptest.Server, body string, headers map[string]string) (*http.Response, []ssetest.Event, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+PathChatCompletions, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, err := ssetest.Read(resp.Body)
	return resp, events, err
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// The wire types below follow OpenAI's API reference; tests decode into
// them to check field names and shapes.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type wireToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string         `json:"role"`
			Content   *string        `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string         `json:"role"`
			Content   *string        `json:"content"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

type errorBody struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// streamResult is a parsed chat completion stream.
type streamResult struct {
	chunks       []chunk
	content      string
	toolCall     wireToolCall
	finish       string
	usage        *usage
	done         bool
	contentCount int // chunks carrying content or argument fragments
}

func parseStream(t *testing.T, events []ssetest.Event) streamResult {
	t.Helper()
	var r streamResult
	for i, ev := range events {
		if r.done {
			t.Fatalf("event %d after [DONE]: %q", i, ev.Data)
		}
		if ev.Name != "" {
			t.Errorf("OpenAI events carry no event name, got %q", ev.Name)
		}
		if ev.Data == "[DONE]" {
			r.done = true
			continue
		}
		c := decode[chunk](t, []byte(ev.Data))
		r.chunks = append(r.chunks, c)
		if len(c.Choices) == 0 {
			r.usage = ptr(decode[usage](t, c.Usage))
			continue
		}
		d := c.Choices[0].Delta
		if d.Content != nil && *d.Content != "" {
			r.content += *d.Content
			r.contentCount++
		}
		for _, tc := range d.ToolCalls {
			if tc.ID != "" {
				r.toolCall.ID, r.toolCall.Type, r.toolCall.Function.Name = tc.ID, tc.Type, tc.Function.Name
			}
			if tc.Function.Arguments != "" {
				r.toolCall.Function.Arguments += tc.Function.Arguments
				r.contentCount++
			}
		}
		if f := c.Choices[0].FinishReason; f != nil {
			r.finish = *f
		}
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func decodeInto(b []byte, v any) error { return json.Unmarshal(b, v) }
