package openai

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// Options configure the stand-in; see llmcore.Options.
type Options = llmcore.Options

// Routes served by the handler.
const (
	PathChatCompletions = "/v1/chat/completions"
	PathEmbeddings      = "/v1/embeddings"
	PathModels          = "/v1/models"
)

// handler serves the OpenAI API. It is safe for concurrent use; it keeps no
// state between requests.
type handler struct {
	opts   Options
	log    *slog.Logger
	models []byte // the GET /v1/models body, built once
}

// New returns a handler for POST /v1/chat/completions, POST /v1/embeddings,
// GET /v1/models and GET /v1/models/{id}. Any other request is answered 404
// in OpenAI's error shape.
func New(opts Options) http.Handler {
	opts = opts.WithDefaults()
	return &handler{opts: opts, log: opts.Logger, models: modelList(opts.Model)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	llmcore.EchoHeaders(w, r)
	status := h.route(w, r)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "openai stand-in",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("elapsed", time.Since(start)))
	}
}

// route dispatches and returns the status answered (0 when the client went
// away first), for the log.
func (h *handler) route(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.Path
	switch {
	case path == PathChatCompletions && r.Method == http.MethodPost:
		return h.chat(w, r)
	case path == PathEmbeddings && r.Method == http.MethodPost:
		return h.embeddings(w, r)
	case path == PathModels && r.Method == http.MethodGet:
		return h.listModels(w, r)
	case strings.HasPrefix(path, PathModels+"/") && len(path) > len(PathModels)+1 && r.Method == http.MethodGet:
		return h.getModel(w, r, path[len(PathModels)+1:])
	}
	return NotFound(w, r)
}

// NotFound answers 404 the way OpenAI answers an unknown route.
func NotFound(w http.ResponseWriter, r *http.Request) int {
	setRequestID(w, []byte(r.Method+" "+r.URL.Path))
	writeError(w, &apiError{status: http.StatusNotFound, message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")", typ: "invalid_request_error"}, 0)
	return http.StatusNotFound
}

// call is what every endpoint starts from once the shared steps are done.
type call struct {
	plan   llmcore.Plan
	body   *bytes.Buffer // nil for GET
	digest llmcore.Digest
}

// begin runs the steps shared by every endpoint: resolve the plan, read the
// body, wait the latency, answer an injected status. It returns ok=false
// when it already answered (or the client went away); status is then what
// was answered.
func (h *handler) begin(w http.ResponseWriter, r *http.Request) (c call, status int, ok bool) {
	if r.Method == http.MethodPost {
		body, err := llmcore.ReadBody(w, r, h.opts.MaxBodyBytes)
		if err != nil {
			if err == llmcore.ErrBodyTooLarge {
				setRequestID(w, []byte(r.URL.Path))
				writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error",
					message: "Request body too large: the stand-in accepts at most " + strconv.FormatInt(h.opts.MaxBodyBytes, 10) + " bytes."}, 0)
				return c, http.StatusRequestEntityTooLarge, false
			}
			return c, 0, false
		}
		c.body = body
		c.digest = setRequestID(w, body.Bytes())
	} else {
		c.digest = setRequestID(w, []byte(r.Method+" "+r.URL.Path))
	}
	plan, err := llmcore.NewPlan(h.opts, r.Header)
	if err != nil {
		c.release()
		writeError(w, invalid("", "", "%v", err), 0)
		return c, http.StatusBadRequest, false
	}
	c.plan = plan
	if llmcore.Sleep(r.Context(), plan.Latency) != nil {
		c.release()
		return c, 0, false
	}
	if plan.Status != 0 {
		c.release()
		writeError(w, injectedError(plan.Status), plan.RetryAfter)
		return c, plan.Status, false
	}
	return c, 0, true
}

// setRequestID sets the x-request-id header every OpenAI answer carries,
// derived from the request body, and returns the body's digest.
func setRequestID(w http.ResponseWriter, body []byte) llmcore.Digest {
	d := llmcore.DigestOf(body)
	w.Header().Set("X-Request-Id", d.ID("req_", 2))
	return d
}

func (c *call) release() {
	llmcore.ReleaseBody(c.body)
	c.body = nil
}
