// Package anthropic is a local stand-in for the Anthropic Messages API:
// POST /v1/messages (streaming included, tool use) and
// POST /v1/messages/count_tokens, on the real wire format, so that clients
// and gateway plugins built for Anthropic cannot tell the difference.
// Answers are deterministic functions of the request; see
// internal/standin/README.md for the rules and the x-mock-* headers that
// inject latency and faults.
//
// It exists for tests, the quickstart and benchmarks. It must never be used
// in a production request path.
package anthropic
