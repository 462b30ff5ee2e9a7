// Package llm serves the OpenAI and Anthropic stand-ins on one handler, the
// way `sluice mock` exposes them for demos, the quickstart and load tests.
// It owns only the routing between them and the health endpoint; the wire
// formats live in internal/standin/openai and internal/standin/anthropic.
//
// It must never be used in a production request path.
package llm

import (
	"net/http"

	"github.com/sluicegw/sluice/internal/standin/anthropic"
	"github.com/sluicegw/sluice/internal/standin/llmcore"
	"github.com/sluicegw/sluice/internal/standin/openai"
)

// Options configure both stand-ins; see llmcore.Options for each field.
type Options = llmcore.Options

// PathHealth answers 200 {"status":"ok"} to GET and HEAD.
const PathHealth = "/healthz"

// New returns a handler serving
//
//	POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models[/{id}]  (OpenAI)
//	POST /v1/messages, POST /v1/messages/count_tokens                     (Anthropic)
//	GET  /healthz
//
// Anything else is answered 404 in OpenAI's error shape. The handler is safe
// for concurrent use.
func New(opts Options) http.Handler {
	oa := openai.New(opts)
	an := anthropic.New(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case anthropic.PathMessages, anthropic.PathCountTokens:
			an.ServeHTTP(w, r)
		case PathHealth:
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				openai.NotFound(w, r)
				return
			}
			llmcore.WriteJSON(w, http.StatusOK, []byte("{\"status\":\"ok\"}\n"))
		default:
			oa.ServeHTTP(w, r)
		}
	})
}
