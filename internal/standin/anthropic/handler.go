package anthropic

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// Options configure the stand-in; see llmcore.Options.
type Options = llmcore.Options

// Routes served by the handler.
const (
	PathMessages    = "/v1/messages"
	PathCountTokens = "/v1/messages/count_tokens"
)

// handler serves the Messages API. It is safe for concurrent use; it keeps
// no state between requests.
type handler struct {
	opts Options
	log  *slog.Logger
}

// New returns a handler for POST /v1/messages and
// POST /v1/messages/count_tokens. Any other request is answered 404 in
// Anthropic's error shape. The anthropic-version header and the API key are
// accepted whatever they are (the key's presence is echoed, see
// llmcore.HeaderEchoAuthorization).
func New(opts Options) http.Handler {
	opts = opts.WithDefaults()
	return &handler{opts: opts, log: opts.Logger}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	llmcore.EchoHeaders(w, r)
	var status int
	switch {
	case r.URL.Path == PathMessages && r.Method == http.MethodPost:
		status = h.messages(w, r, false)
	case r.URL.Path == PathCountTokens && r.Method == http.MethodPost:
		status = h.messages(w, r, true)
	default:
		setRequestID(w, []byte(r.Method+" "+r.URL.Path))
		status = writeError(w, &apiError{status: http.StatusNotFound, typ: "not_found_error", message: "Not found: " + r.Method + " " + r.URL.Path}, 0)
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "anthropic stand-in",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("elapsed", time.Since(start)))
	}
}

// messages serves both routes; countOnly answers count_tokens. It returns
// the status answered (0 when the client went away first), for the log.
func (h *handler) messages(w http.ResponseWriter, r *http.Request, countOnly bool) int {
	buf, err := llmcore.ReadBody(w, r, h.opts.MaxBodyBytes)
	if err != nil {
		if err == llmcore.ErrBodyTooLarge {
			setRequestID(w, []byte(r.URL.Path))
			return writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, typ: "request_too_large",
				message: "Request exceeds the maximum allowed number of bytes (" + strconv.FormatInt(h.opts.MaxBodyBytes, 10) + ")."}, 0)
		}
		return 0
	}
	digest := setRequestID(w, buf.Bytes())
	plan, err := llmcore.NewPlan(h.opts, r.Header)
	if err != nil {
		llmcore.ReleaseBody(buf)
		return writeError(w, invalid("%v", err), 0)
	}
	if llmcore.Sleep(r.Context(), plan.Latency) != nil {
		llmcore.ReleaseBody(buf)
		return 0
	}
	if plan.Status != 0 {
		llmcore.ReleaseBody(buf)
		return writeError(w, injectedError(plan.Status), plan.RetryAfter)
	}
	in, aerr := parseMessages(buf.Bytes(), !countOnly)
	llmcore.ReleaseBody(buf)
	if aerr != nil {
		return writeError(w, aerr, 0)
	}
	if s := llmcore.StatusForModel(in.model); s != 0 {
		return writeError(w, injectedError(s), plan.RetryAfter)
	}
	if countOnly {
		body := append(append([]byte(`{"input_tokens":`), strconv.Itoa(in.inputTokens)...), "}\n"...)
		llmcore.WriteJSON(w, http.StatusOK, body)
		return http.StatusOK
	}
	ans := answerMessages(in, plan, digest)
	id := digest.ID("msg_", 0)
	if in.stream {
		streamMessage(w, r, plan, in, &ans, id)
		return http.StatusOK
	}
	if plan.AbortAfter >= 0 {
		llmcore.Abort()
	}
	b := llmcore.GetBuffer()
	*b = appendMessage(*b, id, in.model, &ans)
	llmcore.WriteJSON(w, http.StatusOK, *b)
	llmcore.PutBuffer(b)
	return http.StatusOK
}

// setRequestID sets the request-id header every Anthropic answer carries,
// derived from the request body, and returns the body's digest.
func setRequestID(w http.ResponseWriter, body []byte) llmcore.Digest {
	d := llmcore.DigestOf(body)
	w.Header().Set("Request-Id", d.ID("req_", 2))
	return d
}
