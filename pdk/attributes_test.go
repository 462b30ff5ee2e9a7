package pdk_test

import (
	"encoding/json"
	"testing"

	"github.com/sluicegw/sluice/internal/usagescan"
	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

func TestMergeLog(t *testing.T) {
	attrs := map[string]any{"model": "gpt-4o", "input_token": int64(3)}
	cases := []struct {
		name, prev, want string
		err              bool
	}{
		{"no previous value", ``, `{\"input_token\":3,\"model\":\"gpt-4o\"}`, false},
		{"escaped object from another plugin; ours wins on a shared key",
			`{\"cache_status\":\"hit\",\"model\":\"old\",\"big\":12345678901234567890}`,
			`{\"big\":12345678901234567890,\"cache_status\":\"hit\",\"input_token\":3,\"model\":\"gpt-4o\"}`, false},
		{"unescaped object is accepted", `{"a":"<b>"}`, `{\"a\":\"\\u003cb\\u003e\",\"input_token\":3,\"model\":\"gpt-4o\"}`, false},
		{"garbage is overwritten, with an error", `not json`, `{\"input_token\":3,\"model\":\"gpt-4o\"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pdk.MergeLog([]byte(tc.prev), attrs)
			if string(got) != tc.want || (err != nil) != tc.err {
				t.Errorf("got %s (err %v)\nwant %s", got, err, tc.want)
			}
		})
	}
}

// usageLogger tracks usage in the response stream and writes ai_log and a
// trace tag when the stream is done.
var usageLogger = pdk.Plugin[struct{}]{
	Name: "usage-logger",
	OnRequestHeaders: func(ctx *pdk.Context, _ struct{}) pdk.Action {
		ctx.SetValue(pdk.ValueRequestModel, "requested-model")
		return pdk.Continue
	},
	OnStreamingResponseBody: func(ctx *pdk.Context, _ struct{}, chunk []byte, eos bool) []byte {
		ctx.TrackUsage(chunk, eos)
		return chunk
	},
	OnStreamDone: func(ctx *pdk.Context, _ struct{}) {
		ctx.SetAttribute("route", ctx.RouteName())
		if err := ctx.WriteAILog(); err != nil {
			ctx.Log().Errorf("ai_log: %v", err)
		}
		_ = ctx.SetTraceTag("gen_ai.response.model", ctx.StringValue("missing", "fallback"))
	},
}

func TestTrackUsageAndWriteAILog(t *testing.T) {
	h := pdktest.New(t, usageLogger.VMContext(), ``,
		pdktest.WithProperty([]string{"ai_log"}, `{\"cache_status\":\"miss\",\"model\":\"from-cache-plugin\"}`),
		pdktest.WithProperty([]string{"route_name"}, "chat"))
	if !h.Start() {
		t.Fatal("configure failed")
	}
	streamUsage(h)
	if n := h.UsageScans(); n != 1 {
		t.Errorf("the host scanned %d events for usage, want 1", n)
	}
	checkUsageLog(t, h)
}

// TestTrackUsageWithoutHostScan: a host that does not scan usage (here one
// whose answer the kit cannot read) gives the same ai_log, the kit scanning
// in the guest, and is asked once only.
func TestTrackUsageWithoutHostScan(t *testing.T) {
	pdk.ResetHostScan()
	t.Cleanup(pdk.ResetHostScan)
	h := pdktest.New(t, usageLogger.VMContext(), ``,
		pdktest.WithProperty([]string{"ai_log"}, `{\"cache_status\":\"miss\",\"model\":\"from-cache-plugin\"}`),
		pdktest.WithProperty([]string{"route_name"}, "chat"))
	asked := 0
	h.RegisterForeignFunction(usagescan.ForeignFunction, func([]byte) []byte {
		asked++
		return []byte{9}
	})
	if !h.Start() {
		t.Fatal("configure failed")
	}
	for range 2 {
		streamUsage(h)
		checkUsageLog(t, h)
	}
	if asked != 1 {
		t.Errorf("the kit asked the host %d times, want once", asked)
	}
}

// streamUsage runs one streamed chat completion through usageLogger, its
// usage event split across two chunks.
func streamUsage(h *pdktest.Host) {
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), true)
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "text/event-stream"), false)
	h.CallOnResponseBody(id, []byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,"), false)
	h.CallOnResponseBody(id, []byte("\"completion_tokens\":6}}\n\ndata: [DONE]\n\n"), true)
	h.CompleteHttpContext(id)
}

// checkUsageLog checks the ai_log and trace tag usageLogger wrote for the
// response of TestTrackUsageAndWriteAILog.
func checkUsageLog(t *testing.T, h *pdktest.Host) {
	t.Helper()
	raw, err := h.GetProperty([]string{"ai_log"})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &s); err != nil {
		t.Fatalf("ai_log is not an escaped JSON string: %s", raw)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("ai_log %s: %v", s, err)
	}
	want := map[string]any{"cache_status": "miss", "model": "requested-model", "route": "chat",
		"input_token": 4.0, "output_token": 6.0, "total_token": 10.0,
		"input_token_details": map[string]any{}, "output_token_details": map[string]any{}}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("ai_log\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if v, err := h.GetProperty([]string{"trace_span_tag.gen_ai.response.model"}); err != nil || string(v) != "fallback" {
		t.Errorf("trace tag %q %v", v, err)
	}
}
