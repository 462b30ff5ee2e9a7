package anthropic

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/internal/standin/llmcore"
)

// apiError is an error answer in Anthropic's shape:
// {"type":"error","error":{"type":…,"message":…}}.
type apiError struct {
	status  int
	typ     string
	message string
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: fmt.Sprintf(format, args...)}
}

func decodeError(e *llmcore.DecodeError) *apiError {
	if e.Syntax {
		return invalid("The request body is not valid JSON: %v. The Messages API expects a JSON object.", e)
	}
	if e.Field == "" {
		return invalid("The request body must be a JSON object, but got %s instead.", e.Got)
	}
	return invalid("%s: Input should be %s, but got %s.", e.Field, e.Expected, e.Got)
}

// errorType maps a status to Anthropic's error type.
func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// injectedError is the answer to X-Mock-Status or a mock-status-NNN model.
func injectedError(status int) *apiError {
	msg := "Injected by the stand-in: status " + strconv.Itoa(status) + "."
	switch errorType(status) {
	case "rate_limit_error":
		msg = "Number of requests has exceeded your rate limit. " + msg
	case "overloaded_error":
		msg = "Overloaded. " + msg
	case "api_error":
		msg = "Internal server error. " + msg
	case "authentication_error":
		msg = "invalid x-api-key. " + msg
	}
	return &apiError{status: status, typ: errorType(status), message: msg}
}

func appendErrorObject(dst []byte, e *apiError) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = llmcore.AppendString(dst, e.typ)
	dst = append(dst, `,"message":`...)
	dst = llmcore.AppendString(dst, e.message)
	return append(dst, "}}"...)
}

func writeError(w http.ResponseWriter, e *apiError, retryAfter int) int {
	switch e.status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, 529:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	b := llmcore.GetBuffer()
	*b = append(appendErrorObject(*b, e), '\n')
	llmcore.WriteJSON(w, e.status, *b)
	llmcore.PutBuffer(b)
	return e.status
}
