// Package cluster owns Sluice's upstream clusters: their names (plain,
// "name:port" and the Envoy/Higress forms such as outbound|443||llm.dns),
// their endpoints (static, re-resolved from DNS, or Redis servers), load
// balancing across healthy endpoints, active HTTP health checks, and one
// HTTP transport per cluster with its connect timeout and TLS settings.
//
// A Registry is built from validated, defaulted config (internal/config),
// started once, and stopped once; a configuration reload builds a new
// Registry and stops the old one after its requests drain.
//
// The package must not know about routes, listeners or plugins: it answers
// "which cluster is this name?" and "send this request to one endpoint of
// that cluster", nothing more. Redis clusters are resolvable by name here,
// but talking Redis is the Redis bridge's job.
package cluster
