// Package gateway is the data plane: listeners, the router, the stream
// driver that walks a request through the filter chain, and the reverse
// proxy to upstream clusters.
//
// A request flows: Server.ServeHTTP → RouteTable.Match → (no filters) the
// direct proxy path, or (filters) a StreamDriver that runs the request
// headers, body and trailers through every Filter in order, sends the result
// upstream, and runs the response back through the filters in reverse order.
// Async work (callouts, resumes, injected data) reaches the driver through
// FilterHandle.Post; only the driver goroutine advances a stream.
//
// The package must not know about Wasm: plugins plug in through the Filter
// interface (internal/wasmhost implements it). It must not parse
// configuration files either; it receives a validated config.Snapshot.
package gateway
