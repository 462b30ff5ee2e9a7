package main

import (
	"testing"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// BenchmarkChat runs one OpenAI chat request (one that names no template, the common case)
// through the plugin natively, request headers to response headers. In a
// Wasm guest the same work is many times slower; allocations and host
// calls are what to watch.
func BenchmarkChat(b *testing.B) {
	const cfg = `{"templates":[{"name":"translate","template":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You translate into {{language}}."},{"role":"user","content":"{{text}}"}]}}]}`
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the plot of Hamlet in two sentences."}]}`)
	h := pdktest.New(b, plugin.VMContext(), cfg, pdktest.WithLogLevel(pdk.LevelInfo))
	if !h.Start() {
		b.Fatal("configure failed")
	}
	hdrs := pdktest.RequestHeaders("gw.example.com", "/v1/chat/completions", "content-length", "120", "x-mse-consumer", "bench")
	resp := pdktest.Headers(":status", "200", "content-type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, hdrs, false)
		h.CallOnRequestBody(id, body, true)
		h.CallOnResponseHeaders(id, resp, false)
		h.CompleteHttpContext(id)
	}
}
