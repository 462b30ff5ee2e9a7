package pdk

import (
	"encoding/json"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
)

// This file is local replies: answering the client from the plugin
// instead of the upstream (proxy_send_local_response, plugins-A.md §0.7).

// Reply is a local response.
type Reply struct {
	// Status is the HTTP status code (100–999).
	Status int
	// Details is the response-code-details string the host records and
	// logs (e.g. "ai-quota.noquota"); whitespace becomes '_'. Empty: the
	// host's default ("wasm_local_reply" in Sluice).
	Details string
	// Headers are added to the response; content-type included.
	Headers [][2]string
	// Body is the response body.
	Body []byte
}

// Reply sends r to the client and returns the action the callback must
// return, so a callback ends with `return ctx.Reply(…)`. The request goes
// no further (no upstream request if it was not sent yet), and the reply
// runs through the response callbacks of the plugins that saw the request,
// this one included (see RepliedLocally). When the host refuses the reply
// (a second reply, or response headers already sent) the failure is logged
// and Continue is returned so the stream does not hang.
func (c *Context) Reply(r Reply) Action {
	headers := r.Headers
	if headers == nil {
		headers = [][2]string{}
	}
	if err := proxywasm.SendHttpResponseWithDetail(uint32(r.Status), r.Details, headers, r.Body, -1); err != nil {
		c.Log().Errorf("local reply %d (%s) refused by the host: %v", r.Status, r.Details, err)
		return Continue
	}
	c.repliedLocally = true
	return Pause
}

// ReplyError sends an OpenAI-style JSON error, the shape OpenAI clients
// parse:
//
//	{"error":{"message":"…","type":"…","code":"…"}}
//
// code doubles as the response-code details. errType defaults to
// "invalid_request_error" for 4xx and "server_error" otherwise.
func (c *Context) ReplyError(status int, errType, code, message string) Action {
	return c.Reply(ErrorReply(status, errType, code, message))
}

// ErrorReply builds the Reply that ReplyError sends.
func ErrorReply(status int, errType, code, message string) Reply {
	if errType == "" {
		errType = "server_error"
		if status >= 400 && status < 500 {
			errType = "invalid_request_error"
		}
	}
	type apiError struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code,omitempty"`
	}
	body, _ := json.Marshal(struct {
		Error apiError `json:"error"`
	}{apiError{Message: message, Type: errType, Code: code}})
	return Reply{
		Status:  status,
		Details: strings.TrimSpace(code),
		Headers: [][2]string{{"content-type", "application/json"}},
		Body:    append(body, '\n'),
	}
}
