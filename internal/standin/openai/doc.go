// Package openai is a local stand-in for the OpenAI API: chat completions
// (streaming, stream_options.include_usage, tool calls), embeddings (float
// and base64) and the model list, on the real wire format, so that clients
// and gateway plugins built for OpenAI cannot tell the difference. Answers
// are deterministic functions of the request; see internal/standin/README.md
// for the rules and the x-mock-* headers that inject latency and faults.
//
// It exists for tests, the quickstart and benchmarks. It must never be used
// in a production request path.
package openai
