//go:build !wasm

// Package pdktest runs plugins built on pdk natively, in `go test`, on the
// SDK's proxytest host emulator. It adds what the emulator lacks for the
// kit: it answers the get_log_level foreign function (the emulator ends the
// process on a foreign function nobody registered) and counts the queries,
// it scans token usage for the kit as Sluice does (sluice_scan_token_usage,
// so a native test runs the same path as the plugin in Sluice), and it
// cleans the emulator's global state when the test ends.
//
// It builds natively only (proxytest has no wasm build). The emulator is
// global state: tests using it must not run in parallel.
// The package must not be imported by plugin code, only by tests.
package pdktest

import (
	"encoding/binary"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/internal/usagescan"
	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/internal/hostenv"
)

// Host is a proxytest emulator running one plugin.
type Host struct {
	proxytest.HostEmulator
	level   pdk.LogLevel
	queries int
	scans   int
}

// Option configures New.
type Option func(*options)

type options struct {
	emu   *proxytest.EmulatorOption
	level pdk.LogLevel
}

// WithProperty sets a host property (path segments, e.g.
// []string{"route_name"}) before the plugin starts. Properties are global
// in the emulator, not per stream.
func WithProperty(path []string, value string) Option {
	return func(o *options) { o.emu.WithProperty(path, []byte(value)) }
}

// WithLogLevel sets the level get_log_level reports (default trace, so
// every log line reaches the emulator's log lists).
func WithLogLevel(l pdk.LogLevel) Option { return func(o *options) { o.level = l } }

// active ends the emulator New started last, if it still runs.
var active func()

// New starts an emulator for the plugin run by vm (pdk.Plugin.VMContext)
// with config as its plugin configuration. The plugin is not started: call
// Start. The emulator is global: New ends the previous Host first, and the
// test's cleanup ends this one.
func New(t testing.TB, vm types.VMContext, config string, opts ...Option) *Host {
	t.Helper()
	if active != nil {
		active()
	}
	o := &options{emu: proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(config))}
	for _, f := range opts {
		f(o)
	}
	emu, reset := proxytest.NewHostEmulator(o.emu)
	h := &Host{HostEmulator: emu, level: o.level}
	emu.RegisterForeignFunction("get_log_level", func([]byte) []byte {
		h.queries++
		return binary.LittleEndian.AppendUint32(nil, uint32(h.level))
	})
	emu.RegisterForeignFunction(usagescan.ForeignFunction, func(event []byte) []byte {
		h.scans++
		var f usagescan.Fields
		f.Scan(string(event))
		return usagescan.Append(nil, &f)
	})
	prev, prevScan := hostenv.QueryLogLevel, hostenv.ScanUsage
	hostenv.QueryLogLevel, hostenv.ScanUsage = true, true
	done := false
	end := func() {
		if done {
			return
		}
		done = true
		active = nil
		hostenv.QueryLogLevel, hostenv.ScanUsage = prev, prevScan
		reset()
	}
	active = end
	t.Cleanup(end)
	return h
}

// Start runs the VM start and the plugin's configure and reports whether
// configure accepted the configuration.
func (h *Host) Start() bool {
	if h.StartVM() != types.OnVMStartStatusOK {
		return false
	}
	return h.StartPlugin() == types.OnPluginStartStatusOK
}

// SetLogLevel changes the level get_log_level reports from now on.
func (h *Host) SetLogLevel(l pdk.LogLevel) { h.level = l }

// LogLevelQueries returns how often the plugin asked for the log level.
func (h *Host) LogLevelQueries() int { return h.queries }

// UsageScans returns how many times the plugin asked the host to scan an
// event for token usage.
func (h *Host) UsageScans() int { return h.scans }

// Logs returns every log line the plugin wrote at level or above, in level
// order (the emulator keeps one list per level).
func (h *Host) Logs(level pdk.LogLevel) []string {
	lists := [][]string{h.GetTraceLogs(), h.GetDebugLogs(), h.GetInfoLogs(), h.GetWarnLogs(), h.GetErrorLogs(), h.GetCriticalLogs()}
	var out []string
	for l := level; int(l) < len(lists); l++ {
		out = append(out, lists[l]...)
	}
	return out
}

// Headers turns name, value, name, value… into a header list.
func Headers(kv ...string) [][2]string {
	out := make([][2]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, [2]string{kv[i], kv[i+1]})
	}
	return out
}

// RequestHeaders is a typical request's headers: POST path on
// host, JSON body, plus extra name/value pairs.
func RequestHeaders(host, path string, extra ...string) [][2]string {
	h := Headers(":method", "POST", ":scheme", "http", ":authority", host, ":path", path,
		"content-type", "application/json")
	return append(h, Headers(extra...)...)
}
