package anthropic

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	srv := newServer(t, Options{})
	const ok = `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		path       string
		body       string
		headers    map[string]string
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{name: "malformed JSON", body: `{"model":`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "not valid JSON"},
		{name: "missing max_tokens", body: `{"model":"c","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "max_tokens: Field required"},
		{name: "max_tokens zero", body: `{"model":"c","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "max_tokens"},
		{name: "missing model", body: `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "model: Field required"},
		{name: "missing messages", body: `{"model":"c","max_tokens":10}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "messages: Field required"},
		{name: "system role in messages", body: `{"model":"c","max_tokens":10,"messages":[{"role":"system","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "messages.0.role"},
		{name: "content missing", body: `{"model":"c","max_tokens":10,"messages":[{"role":"user"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "messages.0.content: Field required"},
		{name: "wrong type", body: `{"model":"c","max_tokens":"ten","messages":[]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "max_tokens: Input should be an integer"},
		{name: "bad system", body: `{"model":"c","max_tokens":10,"system":5,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "system"},
		{name: "tool_choice names unknown tool", body: `{"model":"c","max_tokens":10,"tools":[{"name":"a","input_schema":{}}],"tool_choice":{"type":"tool","name":"b"},"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "tool_choice"},
		{name: "injected 429", body: ok, headers: map[string]string{"X-Mock-Status": "429"}, wantStatus: 429, wantType: "rate_limit_error"},
		{name: "injected 529", body: ok, headers: map[string]string{"X-Mock-Status": "529"}, wantStatus: 529, wantType: "overloaded_error"},
		{name: "injected 401", body: ok, headers: map[string]string{"X-Mock-Status": "401"}, wantStatus: 401, wantType: "authentication_error"},
		{name: "injected 500", body: ok, headers: map[string]string{"X-Mock-Status": "500"}, wantStatus: 500, wantType: "api_error"},
		{name: "model trigger", body: `{"model":"mock-status-529","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 529, wantType: "overloaded_error"},
		{name: "bad mock header", body: ok, headers: map[string]string{"X-Mock-Chunk-Delay": "1 second"}, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "X-Mock-Chunk-Delay"},
		{name: "unknown route", path: "/v1/complete", body: ok, wantStatus: 404, wantType: "not_found_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = PathMessages
			}
			resp := do(t, srv, path, tc.body, tc.headers)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, b)
			}
			e := decode[errorBody](t, b)
			if e.Type != "error" || e.Error == nil || e.Error.Type != tc.wantType || e.Error.Message == "" {
				t.Fatalf("error body %s, want type %s", b, tc.wantType)
			}
			if !strings.Contains(e.Error.Message, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", e.Error.Message, tc.wantMsg)
			}
			if tc.wantStatus == 429 || tc.wantStatus == 529 {
				if resp.Header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			}
			if resp.Header.Get("Request-Id") == "" {
				t.Error("no request-id header")
			}
		})
	}
}

func TestStreamAbort(t *testing.T) {
	srv := newServer(t, Options{})
	events, err := postStream(t, srv, `{"model":"c","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b c d"}]}`,
		map[string]string{"X-Mock-Abort-After": "2"})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream ended with %v, want unexpected EOF", err)
	}
	a := assemble(t, events)
	if a.done || a.deltas != 2 || a.text != "Echo: a" {
		t.Errorf("aborted stream: done %v, %d deltas, text %q", a.done, a.deltas, a.text)
	}
	if n := a.names[len(a.names)-1]; n != "content_block_delta" {
		t.Errorf("last event %q, want content_block_delta", n)
	}
}

func TestAuthorizationEcho(t *testing.T) {
	srv := newServer(t, Options{})
	resp, _ := post(t, srv, `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, map[string]string{"X-Api-Key": "sk-ant-secret"})
	if got := resp.Header.Get("X-Mock-Received-Authorization"); got != "present" {
		t.Errorf("X-Mock-Received-Authorization %q", got)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			if strings.Contains(v, "secret") {
				t.Errorf("header %s echoes the key", k)
			}
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}
