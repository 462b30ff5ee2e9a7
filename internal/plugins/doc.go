// Package plugins turns the WasmPlugin resources of a configuration into a
// running filter chain: it loads each module (file://; HTTP and OCI
// sources come with hot update), verifies its sha256, compiles it once per
// hash, builds the plugin configuration Higress's controller would build
// (defaultConfig plus _rules_), orders plugins by phase then priority, and
// reports per-plugin status.
//
// It must not run guest code itself (internal/wasmhost does) nor touch the
// request path beyond handing the gateway a ChainProvider.
package plugins
