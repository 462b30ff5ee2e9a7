package anthropic

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

func do(t *testing.T, srv *httptest.Server, path, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func post(t *testing.T, srv *httptest.Server, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp := do(t, srv, PathMessages, body, headers)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func postStream(t *testing.T, srv *httptest.Server, body string, headers map[string]string) ([]ssetest.Event, error) {
	t.Helper()
	resp := do(t, srv, PathMessages, body, headers)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return ssetest.Read(resp.Body)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// Wire types from Anthropic's API reference.

type usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type contentBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

type messageObj struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []contentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        usage          `json:"usage"`
}

type streamEvent struct {
	Type         string        `json:"type"`
	Message      *messageObj   `json:"message"`
	Index        *int          `json:"index"`
	ContentBlock *contentBlock `json:"content_block"`
	Delta        *struct {
		Type         string  `json:"type"`
		Text         string  `json:"text"`
		PartialJSON  string  `json:"partial_json"`
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage *usage `json:"usage"`
}

type errorBody struct {
	Type  string `json:"type"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// assembled is a stream folded back into a message, as an SDK would.
type assembled struct {
	names  []string
	msg    messageObj
	text   string
	json   string
	done   bool
	deltas int
}

func assemble(t *testing.T, events []ssetest.Event) assembled {
	t.Helper()
	var a assembled
	for _, ev := range events {
		a.names = append(a.names, ev.Name)
		e := decode[streamEvent](t, []byte(ev.Data))
		if e.Type != ev.Name {
			t.Errorf("event %q carries type %q", ev.Name, e.Type)
		}
		switch e.Type {
		case "message_start":
			a.msg = *e.Message
		case "content_block_start":
			a.msg.Content = append(a.msg.Content, *e.ContentBlock)
		case "content_block_delta":
			a.deltas++
			switch e.Delta.Type {
			case "text_delta":
				a.text += e.Delta.Text
			case "input_json_delta":
				a.json += e.Delta.PartialJSON
			default:
				t.Errorf("delta type %q", e.Delta.Type)
			}
		case "message_delta":
			a.msg.StopReason, a.msg.StopSequence = e.Delta.StopReason, e.Delta.StopSequence
			a.msg.Usage.OutputTokens = e.Usage.OutputTokens
		case "message_stop":
			a.done = true
		}
	}
	return a
}
