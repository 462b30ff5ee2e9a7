package llm

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(New(Options{Model: "demo-model"}))
	defer srv.Close()
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantJSON   string // a key path that must be present: "choices", "error.type", …
		wantIn     string // substring of the body
	}{
		{"openai chat", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 200, "choices", `"Echo: hi"`},
		{"openai embeddings", "POST", "/v1/embeddings", `{"model":"e","input":"hi","dimensions":3}`, 200, "data", `"object":"embedding"`},
		{"openai models", "GET", "/v1/models", ``, 200, "data", `"demo-model"`},
		{"openai model", "GET", "/v1/models/demo-model", ``, 200, "id", `"object":"model"`},
		{"anthropic messages", "POST", "/v1/messages", `{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 200, "content", `"type":"message"`},
		{"anthropic count tokens", "POST", "/v1/messages/count_tokens", `{"model":"c","messages":[{"role":"user","content":"hi"}]}`, 200, "input_tokens", `{"input_tokens":1}`},
		{"anthropic error shape on its route", "POST", "/v1/messages", `{"model":"c"}`, 400, "error", `"type":"error"`},
		{"health", "GET", "/healthz", ``, 200, "status", `"ok"`},
		{"unknown path in OpenAI shape", "GET", "/nope", ``, 404, "error", `"Invalid URL (GET /nope)"`},
		{"health wrong method", "POST", "/healthz", ``, 404, "error", `"invalid_request_error"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, b)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatalf("not a JSON object: %s", b)
			}
			if _, ok := obj[strings.Split(tc.wantJSON, ".")[0]]; !ok {
				t.Errorf("no %q in %s", tc.wantJSON, b)
			}
			if !strings.Contains(string(b), tc.wantIn) {
				t.Errorf("body %s does not contain %s", b, tc.wantIn)
			}
		})
	}
}

// TestAnthropicStreamPacing checks pacing on the Anthropic stream through
// the combined handler (the OpenAI one is checked in its package).
func TestAnthropicStreamPacing(t *testing.T) {
	srv := httptest.NewServer(New(Options{ChunkDelay: 20 * time.Millisecond}))
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"c","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b c d"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, err := ssetest.Read(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var arrivals []time.Time
	for _, ev := range events {
		if ev.Name == "content_block_delta" {
			arrivals = append(arrivals, ev.Arrived)
		}
	}
	if len(arrivals) != 5 {
		t.Fatalf("%d deltas, want 5", len(arrivals))
	}
	// As in the OpenAI package's test: a descheduled reader may see two
	// deltas at once, never all of them.
	if span := arrivals[4].Sub(arrivals[0]); span < 60*time.Millisecond {
		t.Errorf("first to last delta took %v, want >= 60ms", span)
	}
	paced := 0
	for i := 1; i < len(arrivals); i++ {
		if arrivals[i].Sub(arrivals[i-1]) >= 10*time.Millisecond {
			paced++
		}
	}
	if paced < 2 {
		t.Errorf("only %d of 4 gaps between deltas were >= 10ms: not paced", paced)
	}
}
