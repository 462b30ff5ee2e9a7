package llmcore

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewPlan(t *testing.T) {
	opts := Options{Latency: time.Second, TTFT: 2 * time.Second, ChunkDelay: 3 * time.Second, ChunkWords: 2}
	tests := []struct {
		name    string
		headers map[string]string
		check   func(Plan) bool
		wantErr string
	}{
		{"defaults from options", nil, func(p Plan) bool {
			return p.Latency == time.Second && p.TTFT == 2*time.Second && p.ChunkDelay == 3*time.Second &&
				p.ChunkWords == 2 && p.Status == 0 && p.AbortAfter == -1 && p.RetryAfter == 1
		}, ""},
		{"overrides", map[string]string{
			HeaderLatency: "5ms", HeaderTTFT: "6ms", HeaderChunkDelay: "0s", HeaderChunkWords: "3",
			HeaderReplyWords: "40", HeaderStatus: "429", HeaderRetryAfter: "7", HeaderAbortAfter: "0",
		}, func(p Plan) bool {
			return p.Latency == 5*time.Millisecond && p.TTFT == 6*time.Millisecond && p.ChunkDelay == 0 &&
				p.ChunkWords == 3 && p.ReplyWords == 40 && p.Status == 429 && p.RetryAfter == 7 && p.AbortAfter == 0
		}, ""},
		{"bad duration", map[string]string{HeaderLatency: "soon"}, nil, "X-Mock-Latency"},
		{"negative duration", map[string]string{HeaderTTFT: "-1s"}, nil, "X-Mock-Ttft"},
		{"status out of range", map[string]string{HeaderStatus: "200"}, nil, "X-Mock-Status"},
		{"abort not a number", map[string]string{HeaderAbortAfter: "x"}, nil, "X-Mock-Abort-After"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			p, err := NewPlan(opts.WithDefaults(), h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.wantErr)) {
					t.Fatalf("error = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Errorf("unexpected plan %+v", p)
			}
		})
	}
}

func TestStatusForModel(t *testing.T) {
	tests := map[string]int{"mock-status-503": 503, "mock-status-429": 429, "mock-status-200": 0, "mock-status-x": 0, "gpt-4o": 0}
	for model, want := range tests {
		if got := StatusForModel(model); got != want {
			t.Errorf("StatusForModel(%q) = %d, want %d", model, got, want)
		}
	}
}

func TestEchoHeaders(t *testing.T) {
	tests := []struct {
		name     string
		req      map[string]string
		wantID   string
		wantAuth string
	}{
		{"nothing", nil, "", "absent"},
		{"bearer", map[string]string{"Authorization": "Bearer sk-secret", "X-Request-Id": "r-1"}, "r-1", "present"},
		{"anthropic key", map[string]string{"X-Api-Key": "sk-ant-secret"}, "", "present"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			for k, v := range tc.req {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			EchoHeaders(w, r)
			if got := w.Header().Get(HeaderEchoRequestID); got != tc.wantID {
				t.Errorf("request id %q, want %q", got, tc.wantID)
			}
			if got := w.Header().Get(HeaderEchoAuthorization); got != tc.wantAuth {
				t.Errorf("authorization %q, want %q", got, tc.wantAuth)
			}
			for _, vs := range w.Header() {
				for _, v := range vs {
					if strings.Contains(v, "secret") {
						t.Errorf("a response header echoes the key: %q", v)
					}
				}
			}
		})
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx, cancel := contextWithCancel(r)
	cancel()
	if err := Sleep(ctx, time.Hour); err == nil {
		t.Fatal("Sleep on a cancelled context returned nil")
	}
}
