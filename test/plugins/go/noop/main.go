// Command noop is the cheapest useful Proxy-Wasm plugin, for benchmarks: on
// request headers it reads :path (one hostcall) and returns Continue. It has
// no configuration and no body callbacks of its own.
package main

import (
	"encoding/json"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

func main() {}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
	path string
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.path, _ = proxywasm.GetHttpRequestHeader(":path")
	return types.ActionContinue
}

// benchBody is a small chat request, the size the AI plugins parse per
// request.
var benchBody = []byte(`{"model":"gpt-3.5-turbo","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"What is the capital of France?"}]}`)

// benchJSONRoundTrip decodes and re-encodes benchBody with encoding/json.
// The host never calls it: BenchmarkGuestJSON (internal/wasmhost) does, to
// measure what ordinary Go code costs inside a guest.
//
//go:wasmexport bench_json_roundtrip
func benchJSONRoundTrip() uint32 {
	var m map[string]any
	_ = json.Unmarshal(benchBody, &m)
	b, _ := json.Marshal(m)
	return uint32(len(b))
}
