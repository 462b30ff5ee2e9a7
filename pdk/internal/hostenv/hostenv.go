// Package hostenv holds the switches that differ between a plugin running as
// wasm inside a host and the same code running natively under the SDK's
// proxytest emulator. It must hold nothing else.
package hostenv

import "runtime"

// QueryLogLevel says whether the kit may call the host's get_log_level
// foreign function. It is true in wasm builds. Natively it starts false:
// proxytest ends the process (log.Fatalf) when a plugin calls a foreign
// function nobody registered, so the kit assumes the trace level instead.
// pdktest registers get_log_level and turns it on.
var QueryLogLevel = runtime.GOARCH == "wasm"

// ScanUsage says whether usage extraction may ask the host to scan an
// event (Sluice's foreign function sluice_scan_token_usage). It is true in
// wasm builds, where a host without the function answers NotFound.
// Natively it starts false for the reason above; pdktest registers the
// function and turns it on.
var ScanUsage = runtime.GOARCH == "wasm"
