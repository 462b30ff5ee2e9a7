package openai

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// apiError is an error answer in OpenAI's shape:
// {"error":{"message":…,"type":…,"param":…,"code":…}}.
type apiError struct {
	status  int
	message string
	typ     string
	param   string // "" is null
	code    string // "" is null
}

func (e *apiError) Error() string { return e.message }

func invalid(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...), typ: "invalid_request_error", param: param, code: code}
}

func missing(param string) *apiError {
	return invalid(param, "missing_required_parameter", "Missing required parameter: '%s'.", param)
}

func decodeError(e *llmcore.DecodeError) *apiError {
	if e.Syntax {
		return invalid("", "", "We could not parse the JSON body of your request: %v. The OpenAI API expects a JSON object; check that the body is valid JSON and that Content-Type is application/json.", e)
	}
	if e.Field == "" {
		return invalid("", "", "We could not parse the JSON body of your request: %v.", e)
	}
	return invalid(e.Field, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", e.Field, e.Expected, e.Got)
}

// injectedError is the answer to X-Mock-Status or a mock-status-NNN model,
// shaped like the error OpenAI sends with that status.
func injectedError(status int) *apiError {
	e := &apiError{status: status, typ: "invalid_request_error"}
	suffix := " (injected by the stand-in: status " + strconv.Itoa(status) + ")"
	switch {
	case status == http.StatusUnauthorized:
		e.message, e.code = "Incorrect API key provided."+suffix, "invalid_api_key"
	case status == http.StatusForbidden:
		e.message, e.code = "You are not allowed to sample from this model."+suffix, "permission_denied"
	case status == http.StatusNotFound:
		e.message, e.code = "The model does not exist or you do not have access to it."+suffix, "model_not_found"
	case status == http.StatusTooManyRequests:
		e.message, e.typ, e.code = "Rate limit reached for requests."+suffix, "requests", "rate_limit_exceeded"
	case status == http.StatusServiceUnavailable:
		e.message, e.typ = "The engine is currently overloaded, please try again later."+suffix, "server_error"
	case status >= 500:
		e.message, e.typ = "The server had an error while processing your request."+suffix, "server_error"
	default:
		e.message = "Your request was rejected." + suffix
	}
	return e
}

func writeError(w http.ResponseWriter, e *apiError, retryAfter int) {
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		w.Header().Set("Retry-After-Ms", strconv.Itoa(retryAfter*1000))
	}
	b := llmcore.GetBuffer()
	defer llmcore.PutBuffer(b)
	out := append(*b, `{"error":{"message":`...)
	out = llmcore.AppendString(out, e.message)
	out = append(out, `,"type":`...)
	out = llmcore.AppendString(out, e.typ)
	out = append(out, `,"param":`...)
	out = llmcore.AppendNullableString(out, e.param)
	out = append(out, `,"code":`...)
	out = llmcore.AppendNullableString(out, e.code)
	out = append(out, "}}\n"...)
	*b = out
	llmcore.WriteJSON(w, e.status, out)
}
