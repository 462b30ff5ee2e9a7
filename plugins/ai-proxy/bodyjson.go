package main

import (
	"encoding/json"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file is the cheap JSON work of the OpenAI pass-through path: the
// request body's top-level fields read in one pass, and values replaced by
// splicing bytes instead of re-encoding the document. Code in a Wasm guest
// runs many times slower than natively, so every pass over the body
// counts.

// topFields are the request body's top-level fields the plugin reads. A
// missing field is the zero Result; Index is the value's offset in the
// body.
type topFields struct {
	model, stream, streamOptions gjson.Result
}

// topFieldsOf reads the fields in one pass over the top level of body (a
// valid JSON object). As gjson.Get, the first of duplicate keys wins.
func topFieldsOf(body []byte) topFields {
	var f topFields
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "model":
			dst = &f.model
		case "stream":
			dst = &f.stream
		case "stream_options":
			dst = &f.streamOptions
		default:
			return true
		}
		if !dst.Exists() {
			*dst = v
		}
		return true
	})
	return f
}

// setStringValue sets the top-level key to the string s. v is the key's
// current value in body (gjson's Index is its offset): it is replaced in
// place, giving the bytes sjson.SetBytes(body, key, s) gives. Without a
// usable v, sjson does the work.
func setStringValue(body []byte, v gjson.Result, key, s string) []byte {
	if out, ok := pdk.SpliceValue(body, v, appendJSONString(nil, s)); ok {
		return out
	}
	out, _ := sjson.SetBytes(body, key, s)
	return out
}

// appendJSONString appends s as a JSON string the way sjson writes one:
// plain ASCII between quotes, anything else through encoding/json.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
