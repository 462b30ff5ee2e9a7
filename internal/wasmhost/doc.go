// Package wasmhost is the Proxy-Wasm host on wazero: it compiles plugin
// modules, runs pools of instances, implements every hostcall of
// Proxy-Wasm 0.2.0/0.2.1 and Higress's 0.2.100 additions, and bridges each
// plugin into the gateway's filter chain (gateway.Filter).
//
// Foreign functions (proxy_call_foreign_function): Higress's get_log_level,
// inject_encoded_data_to_filter_chain and its _on_header variant, Envoy's
// set_global_max_requests_per_io_cycle (accepted, no effect), and Sluice's
// own sluice_scan_token_usage (internal/usagescan), which the plugin kit
// uses when present. Any other name answers NOT_FOUND.
//
// Modules are rewritten before they are compiled (package loopguard): the
// loop guard, and a dispatcher export through which the host makes every
// top-level callback call, so an instance's callbacks share one wazero call
// engine (instance.go, docs/RATIONALE.md).
//
// The authoritative behaviour is shared/spec/host.md. The package owns guest
// memory, context bookkeeping, callouts and shared state between instances.
// It must not parse configuration files, fetch modules or decide plugin
// order; internal/plugins does that and hands it compiled Plugins.
//
// Concurrency: an Instance runs one guest call at a time (its mutex is held
// only for the duration of one export call and the re-entrant allocator
// calls it makes). No lock is held over I/O: callouts run on their own
// goroutines and deliver results through the stream's driver or, when the
// stream has ended, through the instance's own lock.
package wasmhost
