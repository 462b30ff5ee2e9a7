// Command hello-rules is a Higress-style plugin on the wasm-go SDK
// (pkg/wrapper) that proves per-route/domain/service rule selection: it sets
// one header on the request (replace) and adds it to the response, with a
// value that `_rules_` entries (_match_route_, _match_domain_,
// _match_service_) override.
//
// Configuration:
//
//	{"header": "x-hello", "value": "global",
//	 "_rules_": [{"_match_route_": ["route-a"], "value": "route-a"},
//	             {"_match_domain_": ["*.example.com"], "value": "domain"},
//	             {"_match_service_": ["llm.dns:443"], "value": "service", "header": "x-svc"}]}
//
// header defaults to "x-hello", value to "hello"; a rule inherits what it
// does not set from the global configuration.
package main

import (
	"errors"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/log"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func init() {
	wrapper.SetCtx(
		"hello-rules",
		wrapper.ParseOverrideConfig(parseGlobal, parseRule),
		wrapper.ProcessRequestHeaders(onRequestHeaders),
		wrapper.ProcessResponseHeaders(onResponseHeaders),
	)
}

func main() {}

type helloConfig struct {
	header string
	value  string
}

func parseGlobal(json gjson.Result, cfg *helloConfig) error {
	cfg.header, cfg.value = "x-hello", "hello"
	return override(json, cfg)
}

func parseRule(json gjson.Result, global helloConfig, cfg *helloConfig) error {
	*cfg = global
	return override(json, cfg)
}

func override(json gjson.Result, cfg *helloConfig) error {
	if h := json.Get("header"); h.Exists() {
		if h.String() == "" {
			return errors.New(`"header" must not be empty`)
		}
		cfg.header = h.String()
	}
	if v := json.Get("value"); v.Exists() {
		cfg.value = v.String()
	}
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, cfg helloConfig) types.Action {
	if err := proxywasm.ReplaceHttpRequestHeader(cfg.header, cfg.value); err != nil {
		log.Warnf("hello-rules: set request header %s: %v", cfg.header, err)
	}
	return types.HeaderContinue
}

func onResponseHeaders(ctx wrapper.HttpContext, cfg helloConfig) types.Action {
	if err := proxywasm.AddHttpResponseHeader(cfg.header, cfg.value); err != nil {
		log.Warnf("hello-rules: add response header %s: %v", cfg.header, err)
	}
	return types.HeaderContinue
}
