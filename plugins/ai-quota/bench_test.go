package main

import (
	"io"
	"log"
	"testing"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// BenchmarkChatRequest runs one metered chat request through the plugin
// natively on the emulator, as examples/ai-gateway.yaml configures it:
// request headers, the quota's reply, the response with its usage, the
// charge's reply. allocs/op is the figure to compare (a wasm guest takes
// 10-50 times the native time); the emulator's own work is included.
func BenchmarkChatRequest(b *testing.B) {
	prev := log.Writer()
	log.SetOutput(io.Discard) // the emulator logs every Redis query
	b.Cleanup(func() { log.SetOutput(prev) })
	h := pdktest.New(b, plugin.VMContext(), quotaConfig,
		pdktest.WithProperty([]string{"route_name"}, "chat"),
		pdktest.WithProperty([]string{"cluster_name"}, "outbound|80||llm.static"),
		pdktest.WithLogLevel(pdk.LevelInfo))
	if !h.Start() {
		b.Fatal("configure failed")
	}
	headers := pdktest.RequestHeaders("a.org", "/v1/chat/completions", "x-mse-consumer", "bench", "user-agent", "bench/1", "accept", "*/*")
	respHeaders := [][2]string{{":status", "200"}, {"content-type", "application/json"}}
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hamlet avenges his father."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":12,"total_tokens":32}}`)
	quota, left := []byte("$10\r\n1000000000\r\n"), []byte(":999999968\r\n")
	b.ReportAllocs()
	for b.Loop() {
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, headers, false)
		calls := h.GetRedisCalloutAttributesFromContext(id)
		if len(calls) != 1 {
			b.Fatalf("%d redis calls after the request headers", len(calls))
		}
		h.CallOnRedisCallResponse(calls[0].CalloutID, 0, quota)
		h.CallOnResponseHeaders(id, respHeaders, false)
		h.CallOnResponseBody(id, body, true)
		calls = h.GetRedisCalloutAttributesFromContext(id)
		if len(calls) != 1 {
			b.Fatalf("%d redis calls after the response", len(calls))
		}
		h.CallOnRedisCallResponse(calls[0].CalloutID, 0, left)
		h.CompleteHttpContext(id)
	}
}
