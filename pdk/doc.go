// Package pdk is Sluice's plugin development kit: the guest side of a
// Proxy-Wasm plugin written in Go, built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w'
//
// on top of github.com/higress-group/proxy-wasm-go-sdk. It reproduces the
// platform semantics Higress's wasm-go wrapper gives its plugins
// (shared/spec/plugins-A.md §0 and plugins-B.md §0), so a plugin built on it
// accepts the configuration Higress users already write and behaves the
// same in Sluice and in Higress:
//
//   - the configuration envelope: global config, per-route _rules_ with
//     _match_route_, _match_domain_, _match_service_ and
//     _match_route_prefix_, _plugin_id_ (rules.go, match.go), and typed, strict
//     decoding whose errors name the field (config.go);
//   - request and response callbacks: headers, buffered body (one call with
//     the whole body at end of stream), streaming body (one call per chunk,
//     the returned bytes replace it), stream done (plugin.go, stream.go);
//   - HTTP callouts addressed by cluster name (callout.go), a Redis client
//     (redis.go, resp.go), an SSE parser (sse.go), token-usage extraction
//     for OpenAI, Anthropic and Gemini (tokenusage.go);
//   - user attributes merged into the shared ai_log property and
//     trace_span_tag.* properties (attributes.go), counters (metrics.go);
//   - logging guarded by the host's log level, queried at most once per
//     guest call (log.go), and local replies with response-code details
//     (reply.go).
//
// A plugin is a [Plugin] value registered from the main package's init
// function (Go 1.24 reactor rule: main stays empty):
//
//	func init() { pdk.Register(&plugin) }
//	func main() {}
//
// The same code runs natively for unit tests with the SDK's proxytest host
// emulator (see package pdk/pdktest, which also answers get_log_level).
//
// Goroutines: a Proxy-Wasm guest is single-threaded and the host makes one
// guest call at a time, so nothing in this package is safe for concurrent
// use and nothing needs to be. Native tests drive one emulator at a time.
//
// The package must not depend on net/http or other large packages (every
// import ends up in every plugin's .wasm), must not hold state across
// requests beyond what a plugin puts in its configuration, and must not
// talk to the host except through the SDK.
package pdk
