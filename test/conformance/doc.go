// Package conformance holds the Proxy-Wasm host conformance suite: every
// item of shared/spec/host.md Appendix D as a test through the real gateway
// (in-process, on port 0), with plugins compiled from test/plugins by the
// test build (internal/wasmhost/wasmtest).
package conformance
