package openai

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	srv := newServer(t, Options{MaxBodyBytes: 1 << 10})
	const ok = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		headers    map[string]string
		wantStatus int
		wantType   string
		wantParam  string // "" means null
		wantCode   string // "" means null
		wantMsg    string // substring
	}{
		{name: "malformed JSON", body: `{"model":"m",`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "could not parse the JSON body"},
		{name: "body not an object", body: `[1]`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "must be a JSON object"},
		{name: "wrong field type", body: `{"model":1,"messages":[]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "model", wantCode: "invalid_type", wantMsg: "expected a string"},
		{name: "missing model", body: `{"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "must provide a model"},
		{name: "missing messages", body: `{"model":"m"}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages", wantCode: "missing_required_parameter"},
		{name: "empty messages", body: `{"model":"m","messages":[]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages", wantCode: "empty_array"},
		{name: "bad role", body: `{"model":"m","messages":[{"role":"robot","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages[0].role", wantCode: "invalid_value"},
		{name: "user without content", body: `{"model":"m","messages":[{"role":"user"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages[0].content", wantCode: "missing_required_parameter"},
		{name: "content of wrong type", body: `{"model":"m","messages":[{"role":"user","content":5}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages[0].content", wantCode: "invalid_type"},
		{name: "tool message without id", body: `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "messages[0].tool_call_id", wantCode: "missing_required_parameter"},
		{name: "stream_options without stream", body: `{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "stream_options"},
		{name: "max_tokens zero", body: `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "max_tokens", wantCode: "integer_below_min_value"},
		{name: "tool_choice without tools", body: `{"model":"m","tool_choice":"auto","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "tool_choice"},
		{name: "unknown named tool", body: `{"model":"m","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}},"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "tool_choice", wantCode: "invalid_value"},
		{name: "too many stops", body: `{"model":"m","stop":["a","b","c","d","e"],"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "stop", wantCode: "array_above_max_length"},
		{name: "body too large", body: `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, wantStatus: 413, wantType: "invalid_request_error", wantMsg: "too large"},
		{name: "bad mock header", body: ok, headers: map[string]string{"X-Mock-Latency": "later"}, wantStatus: 400, wantType: "invalid_request_error", wantMsg: "X-Mock-Latency"},
		{name: "injected 429", body: ok, headers: map[string]string{"X-Mock-Status": "429"}, wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded"},
		{name: "injected 429 beats a bad body", body: `{`, headers: map[string]string{"X-Mock-Status": "429"}, wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded"},
		{name: "injected 401", body: ok, headers: map[string]string{"X-Mock-Status": "401"}, wantStatus: 401, wantType: "invalid_request_error", wantCode: "invalid_api_key"},
		{name: "injected 500", body: ok, headers: map[string]string{"X-Mock-Status": "500"}, wantStatus: 500, wantType: "server_error"},
		{name: "model trigger 503", body: `{"model":"mock-status-503","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 503, wantType: "server_error"},
		{name: "embeddings without input", path: PathEmbeddings, body: `{"model":"e"}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "input", wantCode: "missing_required_parameter"},
		{name: "embeddings empty string", path: PathEmbeddings, body: `{"model":"e","input":""}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "input", wantCode: "invalid_value"},
		{name: "embeddings bad format", path: PathEmbeddings, body: `{"model":"e","input":"x","encoding_format":"hex"}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "encoding_format", wantCode: "invalid_value"},
		{name: "embeddings bad dimensions", path: PathEmbeddings, body: `{"model":"e","input":"x","dimensions":0}`, wantStatus: 400, wantType: "invalid_request_error", wantParam: "dimensions", wantCode: "integer_below_min_value"},
		{name: "unknown route", path: "/v1/completions/x", body: ok, wantStatus: 404, wantType: "invalid_request_error", wantMsg: "Invalid URL (POST /v1/completions/x)"},
		{name: "wrong method", method: http.MethodGet, path: PathChatCompletions, wantStatus: 404, wantType: "invalid_request_error", wantMsg: "Invalid URL (GET /v1/chat/completions)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = PathChatCompletions
			}
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := decode[errorBody](t, body)
			if e.Error == nil {
				t.Fatalf("no error object: %s", body)
			}
			if e.Error.Type != tc.wantType {
				t.Errorf("type %q, want %q", e.Error.Type, tc.wantType)
			}
			if got := deref(e.Error.Param); got != tc.wantParam {
				t.Errorf("param %q, want %q", got, tc.wantParam)
			}
			if got := deref(e.Error.Code); got != tc.wantCode {
				t.Errorf("code %q, want %q", got, tc.wantCode)
			}
			if !strings.Contains(e.Error.Message, tc.wantMsg) || e.Error.Message == "" {
				t.Errorf("message %q, want it to contain %q", e.Error.Message, tc.wantMsg)
			}
			if tc.wantStatus == 429 || tc.wantStatus == 503 {
				if resp.Header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
				}
			}
			if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
				t.Errorf("X-Request-Id %q", resp.Header.Get("X-Request-Id"))
			}
			// The error shape has exactly these keys.
			var raw map[string]map[string]any
			_ = decodeInto(body, &raw)
			if len(raw) != 1 || len(raw["error"]) != 4 {
				t.Errorf("error shape: %s", body)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
