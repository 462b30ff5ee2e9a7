package main

import (
	"net/url"
	"strings"

	"github.com/tidwall/gjson"
)

// This file tells what a request is for, from its path, and reads the
// admin endpoints' parameters.

// mode is what the plugin does with a request.
type mode int

const (
	modeNone       mode = iota // not an LLM API the plugin meters
	modeCompletion             // an LLM request: check the quota, charge the usage
	modeQuery                  // admin: GET …/quota?consumer=
	modeRefresh                // admin: set a quota
	modeDelta                  // admin: adjust a quota
)

var modeNames = [...]string{"none", "completion", "admin query", "admin refresh", "admin delta"}

// String names the mode.
func (m mode) String() string { return modeNames[m] }

// chatPath is the API the admin endpoints hang under (Higress's).
const chatPath = "/v1/chat/completions"

// meteredPaths are the LLM APIs whose requests are quota-checked and
// charged: OpenAI chat completions, completions, responses and
// embeddings, and Anthropic messages. Higress meters chat completions
// only.
var meteredPaths = []string{chatPath, "/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"}

// mode classifies a request path (query ignored); the admin endpoints are
// <chatPath><admin_path>[/refresh|/delta].
func (c *config) mode(path string) mode {
	path, _, _ = strings.Cut(path, "?")
	path, _, _ = strings.Cut(path, "#")
	switch {
	case strings.HasSuffix(path, c.adminRefresh):
		return modeRefresh
	case strings.HasSuffix(path, c.adminDelta):
		return modeDelta
	case strings.HasSuffix(path, c.adminQuery):
		return modeQuery
	}
	for _, p := range meteredPaths {
		if strings.HasSuffix(path, p) {
			return modeCompletion
		}
	}
	return modeNone
}

// queryParam returns the first value of name in the query of path.
func queryParam(path, name string) string {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	q, _, _ = strings.Cut(q, "#")
	values, _ := url.ParseQuery(q) // keeps the pairs that parse
	return values.Get(name)
}

// adminBodyError is a body the admin endpoints cannot read.
type adminBodyError struct{ msg string }

func (e *adminBodyError) Error() string { return e.msg }

// parseAdminBody reads the parameters of refresh and delta: an
// application/x-www-form-urlencoded body (consumer=a&quota=10, Higress's
// form; the first value of each name counts), or a JSON object
// ({"consumer":"a","quota":10}) when the content type says JSON.
func parseAdminBody(contentType string, body []byte) (map[string]string, error) {
	out := map[string]string{}
	if strings.Contains(strings.ToLower(contentType), "json") {
		if !gjson.ValidBytes(body) {
			return nil, &adminBodyError{"The body is not valid JSON: send an object such as {\"consumer\":\"alice\",\"quota\":1000}."}
		}
		root := gjson.ParseBytes(body)
		if !root.IsObject() {
			return nil, &adminBodyError{"The body must be a JSON object such as {\"consumer\":\"alice\",\"quota\":1000}."}
		}
		root.ForEach(func(k, v gjson.Result) bool {
			if v.Type == gjson.String || v.Type == gjson.Number {
				out[k.String()] = v.String()
			}
			return true
		})
		return out, nil
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &adminBodyError{"The body is not valid application/x-www-form-urlencoded (" + err.Error() + "): send consumer=<name>&quota=<integer>."}
	}
	for k, v := range values {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out, nil
}
