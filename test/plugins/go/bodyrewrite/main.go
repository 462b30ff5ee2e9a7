// Command bodyrewrite is a body-buffering Proxy-Wasm plugin for benchmarks:
// it holds the request body until end of stream (returning Pause from every
// earlier chunk), replaces every occurrence of one word with another, and
// returns Continue. It drops content-length at header time because the
// body length changes.
//
// Configuration (JSON, optional): {"from": "hello", "to": "goodbye"}
// (those are the defaults).
package main

import (
	"bytes"
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

func (*vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{from: []byte("hello"), to: []byte("goodbye")}
}

type pluginContext struct {
	types.DefaultPluginContext
	from, to []byte
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return types.OnPluginStartStatusOK
	}
	var cfg struct {
		From *string `json:"from"`
		To   *string `json:"to"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		proxywasm.LogErrorf("bodyrewrite: configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if cfg.From != nil {
		if *cfg.From == "" {
			proxywasm.LogError(`bodyrewrite: configuration: "from" must not be empty`)
			return types.OnPluginStartStatusFailed
		}
		p.from = []byte(*cfg.From)
	}
	if cfg.To != nil {
		p.to = []byte(*cfg.To)
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{plugin: p} }

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(_ int, eos bool) types.Action {
	if !eos {
		_ = proxywasm.RemoveHttpRequestHeader("content-length")
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestBody(bodySize int, eos bool) types.Action {
	if !eos {
		return types.ActionPause // keep buffering; the next call sees the whole body
	}
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil {
		return types.ActionContinue
	}
	if out := bytes.ReplaceAll(body, h.plugin.from, h.plugin.to); !bytes.Equal(out, body) {
		if err := proxywasm.ReplaceHttpRequestBody(out); err != nil {
			proxywasm.LogErrorf("bodyrewrite: replace body: %v", err)
		}
	}
	return types.ActionContinue
}
