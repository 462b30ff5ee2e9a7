// Package admin owns the admin listener: liveness (/healthz), readiness
// (/readyz), Prometheus metrics (/metrics), the configuration dump
// (/config_dump) and whatever endpoints the binary adds with
// [Server.Handle] (reload, plugin status), all behind an optional bearer
// token.
//
// It serves what its callers hand it and must not reach into the gateway:
// readiness, the config snapshot and the metrics come in as functions and a
// prometheus.Gatherer. It must not redact (the caller passes an already
// redacted snapshot), must not log the bearer token, and must not listen
// anywhere but the address it is given (loopback by default).
package admin
