package pdk

import (
	"os"
	"runtime/debug"
)

// This file tracks what runs now: every callback the host makes into the
// kit (configure, stream callbacks, callout responses) starts with enter,
// which names the plugin and request for Log and forgets the cached log
// level. The guest is single-threaded, so package variables are the state.

// pluginMeta names a plugin in log lines.
type pluginMeta struct {
	name string
	id   string // _plugin_id_ from the configuration, "" when absent
}

var current struct {
	plugin *pluginMeta
	ctx    *Context // nil outside a request
}

// enter starts a guest call on behalf of plugin and, for stream and callout
// callbacks, ctx.
func enter(plugin *pluginMeta, ctx *Context) {
	current.plugin = plugin
	current.ctx = ctx
	resetLogLevel()
}

// panicRecovery is false when WASM_DISABLE_PANIC_RECOVERY=true, as in
// wasm-go: a panic then traps the instance, which helps debugging.
var panicRecovery = os.Getenv("WASM_DISABLE_PANIC_RECOVERY") != "true"

// recovered logs a recovered panic with its stack. where names the
// callback. It returns false when recovery is disabled (the caller must
// re-panic).
func recovered(where string, r any) bool {
	if !panicRecovery {
		return false
	}
	Log().Errorf("recovered from panic in %s: %v\n%s", where, r, debug.Stack())
	return true
}
