package pdk

import (
	"errors"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// This file is a plugin's definition and its configure step: Register
// installs the plugin with the SDK, the root context parses the
// configuration envelope when the host configures it.

// Plugin defines a plugin built on the kit. C is its configuration type
// (typically a pointer to a struct). Every callback is optional; a plugin
// with no callback for a phase costs that phase nothing beyond the host
// call.
//
// Which configuration a request gets is decided at request headers (global
// or the first matching rule, see the package documentation); when none
// applies, none of the callbacks runs for that request.
type Plugin[C any] struct {
	// Name prefixes log lines ([Name] [plugin id] [request id] …).
	Name string

	// Parse turns one configuration — the global one or one rule's, with
	// the envelope keys (_rules_, _match_*, _plugin_id_) removed — into C.
	// Empty input is passed as {}. Errors should name the field
	// (DecodeConfig does; use Errorf in hand-written checks); a failure
	// fails configure. nil means the plugin takes no configuration: any
	// key is then an error.
	Parse func(raw []byte) (C, error)

	// OnRequestHeaders runs when the request headers arrive.
	OnRequestHeaders func(ctx *Context, cfg C) Action
	// OnRequestBody runs once with the whole request body: the kit
	// returns Pause (the host buffers) until end of stream. Not called for
	// requests without a body.
	OnRequestBody func(ctx *Context, cfg C, body []byte) Action
	// OnStreamingRequestBody runs for every request chunk; the returned
	// bytes replace the chunk (return chunk itself to leave it unchanged —
	// the kit then skips the copy, so do not edit chunk in place). When
	// both request body callbacks are set, streaming is used unless the
	// plugin calls ctx.BufferRequestBody.
	OnStreamingRequestBody func(ctx *Context, cfg C, chunk []byte, eos bool) []byte

	// OnResponseHeaders runs when the response headers arrive.
	OnResponseHeaders func(ctx *Context, cfg C) Action
	// OnResponseBody runs once with the whole response body.
	OnResponseBody func(ctx *Context, cfg C, body []byte) Action
	// OnStreamingResponseBody runs for every response chunk, as
	// OnStreamingRequestBody. When both response body callbacks are set,
	// streaming is used unless the plugin calls ctx.BufferResponseBody.
	OnStreamingResponseBody func(ctx *Context, cfg C, chunk []byte, eos bool) []byte

	// OnStreamDone runs when the stream ends (completed or reset), before
	// the host writes its access log: the place to write ai_log.
	OnStreamDone func(ctx *Context, cfg C)
}

// Register installs p as the module's plugin. Call it from the main
// package's init function; a module holds one plugin.
func Register[C any](p *Plugin[C]) {
	proxywasm.SetVMContext(p.VMContext())
}

// VMContext returns the SDK VM context that runs p. Register uses it; tests
// pass it to proxytest (or pdktest.New).
func (p *Plugin[C]) VMContext() types.VMContext { return &vmContext[C]{p: p} }

type vmContext[C any] struct {
	types.DefaultVMContext
	p *Plugin[C]
}

func (v *vmContext[C]) NewPluginContext(uint32) types.PluginContext {
	return &rootContext[C]{p: v.p, meta: pluginMeta{name: v.p.Name}}
}

// rootContext is one configuration of the plugin (the host creates a new
// one for every configuration update).
type rootContext[C any] struct {
	types.DefaultPluginContext
	p     *Plugin[C]
	meta  pluginMeta
	rules *ruleSet[C] // nil until configured
}

// OnPluginStart parses the configuration envelope. Every problem is logged
// at error level, one line each, and fails configure.
func (r *rootContext[C]) OnPluginStart(int) (status types.OnPluginStartStatus) {
	enter(&r.meta, nil)
	// Metric ids are the host's; define them again under this
	// configuration (defining is idempotent by name).
	clear(counters)
	defer func() {
		if x := recover(); x != nil {
			if !recovered("configure", x) {
				panic(x)
			}
			status = types.OnPluginStartStatusFailed
		}
	}()
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		Log().Criticalf("configure: cannot read the plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	parse := r.p.Parse
	if parse == nil {
		parse = noConfig[C]
	}
	env, err := parseEnvelope(raw, parse)
	if env != nil && env.pluginID != "" {
		r.meta.id = env.pluginID
	}
	if err != nil {
		for _, e := range FieldErrors(err) {
			Log().Errorf("configure: %s", e.Error())
		}
		Log().Error("configure failed: the configuration was rejected")
		return types.OnPluginStartStatusFailed
	}
	for _, w := range env.warnings {
		Log().Warnf("configure: %s", w)
	}
	r.rules = env.set
	Log().Infof("configured (global configuration: %t, rules: %d)", env.set.hasGlobal, len(env.set.rules))
	return types.OnPluginStartStatusOK
}

// noConfig is the parser of plugins without configuration.
func noConfig[C any](raw []byte) (C, error) {
	var zero C
	if s := strings.TrimSpace(string(raw)); s != "{}" && s != "" {
		return zero, &FieldError{Problem: "this plugin takes no configuration"}
	}
	return zero, nil
}

// NewHttpContext creates the kit's stream for a request.
func (r *rootContext[C]) NewHttpContext(id uint32) types.HttpContext {
	return &stream[C]{root: r, ctx: newContext(id, &r.meta)}
}
