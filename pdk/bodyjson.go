package pdk

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
)

// Cheap checks and edits of JSON request bodies, shared by the plugins that
// read or rewrite a few top-level fields: in a Wasm guest every pass over
// the body and every re-encoding counts.

// IsJSONObject reports whether the (valid) JSON document body is an
// object: its first non-space byte is '{'.
func IsJSONObject(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

// MayContainJSONString reports whether body can hold the JSON string
// quoted (quotes included): it appears literally, or body has an escape
// that could spell it. False means it is certainly absent.
func MayContainJSONString(body []byte, quoted string) bool {
	return bytes.IndexByte(body, '\\') >= 0 || bytes.Contains(body, []byte(quoted))
}

// ContentTypeIsJSON reports whether a content type contains "json" in any
// case (application/json, application/vnd.api+json …), without
// allocating a lower-case copy.
func ContentTypeIsJSON(ct string) bool {
	for i := 0; i+4 <= len(ct); i++ {
		if strings.EqualFold(ct[i:i+4], "json") {
			return true
		}
	}
	return false
}

// SpliceValue returns body with the value v (found in body by gjson, whose
// Index is its offset) replaced by raw, copying body once. ok is false when
// v's position in body is not known (a missing value, or one gjson could
// not place); the caller then edits the document another way.
func SpliceValue(body []byte, v gjson.Result, raw []byte) (out []byte, ok bool) {
	i, j := v.Index, v.Index+len(v.Raw)
	if i <= 0 || j > len(body) || string(body[i:j]) != v.Raw {
		return nil, false
	}
	out = make([]byte, 0, len(body)-len(v.Raw)+len(raw))
	out = append(out, body[:i]...)
	out = append(out, raw...)
	return append(out, body[j:]...), true
}
