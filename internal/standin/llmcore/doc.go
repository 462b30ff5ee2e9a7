// Package llmcore holds what the OpenAI and Anthropic stand-ins share: their
// options, the deterministic answer rule, the tokenizer used for usage
// counts, tool-call arguments derived from a JSON schema, the embedding
// generator, per-request pacing and fault injection (the x-mock-* headers),
// and a small allocation-lean JSON writer for the hot path.
//
// It is test, demo and benchmark infrastructure only: nothing here may be
// used in a production request path. The rules it implements are documented
// in internal/standin/README.md; tests of other packages rely on them, so a
// change to a rule is a change to that document.
package llmcore
