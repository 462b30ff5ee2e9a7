// Command noop is the cheapest useful Proxy-Wasm plugin, for benchmarks: on
// request headers it reads :path (one hostcall) and returns Continue. It has
// no configuration and no body callbacks of its own.
package main

import (
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
