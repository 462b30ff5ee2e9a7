package llmcore

import (
	"log/slog"
	"time"
)

// DefaultModel is the model listed first by GET /v1/models when Options.Model
// is empty.
const DefaultModel = "mock-gpt"

// DefaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 32 << 20

// Options configure the LLM stand-ins. The zero value answers at once, one
// word per streamed chunk. Every duration can be overridden per request with
// the x-mock-* headers (see Plan).
type Options struct {
	// Latency is the delay before the response headers; for a non-streaming
	// request that is the delay before the whole answer.
	Latency time.Duration
	// TTFT is, for a streaming request, the delay between the flushed
	// headers and the first event carrying the answer.
	TTFT time.Duration
	// ChunkDelay is, for a streaming request, the delay between two content
	// chunks.
	ChunkDelay time.Duration
	// ChunkWords is the number of words per streamed content chunk
	// (default 1).
	ChunkWords int
	// ReplyWords, when positive, makes every text answer carry exactly this
	// many words after its prefix ("Echo:"), the message's words repeated as
	// needed (see README.md, "Answer rule"); for benchmarks that need long
	// streams from short prompts.
	ReplyWords int
	// Model is listed first by GET /v1/models (default DefaultModel). Both
	// APIs still require a model in each request, as the real ones do.
	Model string
	// MaxBodyBytes bounds the request body (default DefaultMaxBodyBytes);
	// larger bodies are answered 413.
	MaxBodyBytes int64
	// Logger receives one debug record per request (default: discard).
	Logger *slog.Logger
}

// WithDefaults returns o with every unset field given its default.
func (o Options) WithDefaults() Options {
	if o.ChunkWords <= 0 {
		o.ChunkWords = 1
	}
	if o.Model == "" {
		o.Model = DefaultModel
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
