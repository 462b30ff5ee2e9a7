package main

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file normalises provider errors: whatever shape a provider answers
// an error in (OpenAI's, Anthropic's, a bare message, plain text), the
// client gets the provider's status with OpenAI's error shape
// {"error":{"message","type","code"}} — or Anthropic's when the client
// spoke Anthropic's API.

// maxErrorText bounds the text of a non-JSON error body kept as message.
const maxErrorText = 1024

// providerError is what a provider's error body says.
type providerError struct {
	message, errType, code string
}

// errorTypeFor is OpenAI's error type for a status.
func errorTypeFor(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 429:
		return "rate_limit_error"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	}
	return "server_error"
}

func parseProviderError(status int, body []byte) providerError {
	pe := providerError{errType: errorTypeFor(status)}
	root := gjson.ParseBytes(body)
	if gjson.ValidBytes(body) && root.IsObject() {
		e := root.Get("error")
		switch {
		case e.IsObject():
			pe.message = e.Get("message").String()
			if t := e.Get("type").String(); t != "" {
				pe.errType = t
			}
			if c := e.Get("code"); c.Exists() && c.Type != gjson.Null {
				pe.code = c.String()
			}
		case e.Type == gjson.String:
			pe.message = e.String()
		}
		if pe.message == "" {
			for _, k := range []string{"message", "msg", "detail", "error_msg"} {
				if v := root.Get(k); v.Type == gjson.String {
					pe.message = v.String()
					break
				}
			}
		}
		if pe.code == "" {
			if c := root.Get("code"); c.Exists() && c.Type != gjson.Null {
				pe.code = c.String()
			}
		}
	} else if t := strings.TrimSpace(string(body)); t != "" {
		if len(t) > maxErrorText {
			t = t[:maxErrorText] + "…"
		}
		pe.message = t
	}
	if pe.message == "" {
		pe.message = "the provider answered status " + strconv.Itoa(status)
	}
	return pe
}

// openAIErrorBody returns body in OpenAI's error shape. A body already in
// that shape is kept as it is.
func openAIErrorBody(status int, body []byte) []byte {
	root := gjson.ParseBytes(body)
	if gjson.ValidBytes(body) && root.Get("error").IsObject() && root.Get("error.message").Type == gjson.String &&
		root.Get("type").String() != "error" {
		return body
	}
	pe := parseProviderError(status, body)
	type apiError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	}
	e := apiError{Message: pe.message, Type: pe.errType}
	if pe.code != "" {
		e.Code = &pe.code
	}
	out, _ := json.Marshal(map[string]apiError{"error": e})
	return out
}

// claudeErrorBody returns body in Anthropic's error shape.
func claudeErrorBody(status int, body []byte) []byte {
	root := gjson.ParseBytes(body)
	if gjson.ValidBytes(body) && root.Get("type").String() == "error" && root.Get("error").IsObject() {
		return body
	}
	pe := parseProviderError(status, body)
	t := pe.errType
	switch t {
	case "server_error":
		t = "api_error"
	case "insufficient_quota":
		t = "rate_limit_error"
	}
	out, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": t, "message": pe.message}})
	return out
}

// claudeErrorReply is a local reply in Anthropic's error shape.
func claudeErrorReply(status int, errType, details, message string) pdk.Reply {
	body, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": errType, "message": message}})
	return pdk.Reply{Status: status, Details: details, Headers: [][2]string{{"content-type", "application/json"}}, Body: body}
}
