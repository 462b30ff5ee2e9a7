package llmcore

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Tool-call arguments are a JSON object built from the function's parameters
// schema (JSON Schema), properties in lexical order, every property present:
//
//	enum        → its first value        const   → its value
//	string      → the argument word       integer, number → 1
//	boolean     → true                    null    → null
//	array       → [one item per "items"]  object  → recursively, {} without properties
//	anyOf/oneOf → the first alternative   no type → object if it has properties, else string
//
// The argument word is the last word (run of letters and digits) of the
// user message, or "mock" when it has none. A type list ["string","null"]
// uses its first non-null type. Nesting deeper than 8 levels yields null.

const maxSchemaDepth = 8

type schemaNode struct {
	Type       json.RawMessage            `json:"type"`
	Properties map[string]json.RawMessage `json:"properties"`
	Items      json.RawMessage            `json:"items"`
	Enum       []json.RawMessage          `json:"enum"`
	Const      json.RawMessage            `json:"const"`
	AnyOf      []json.RawMessage          `json:"anyOf"`
	OneOf      []json.RawMessage          `json:"oneOf"`
}

// ArgumentWord returns the word string-typed arguments are filled with.
func ArgumentWord(userText string) string {
	word := "mock"
	forEachWord(userText, func(w string) { word = w })
	return word
}

// Arguments returns the compact JSON object a tool call carries, built from
// the parameters schema and the argument word (see ArgumentWord).
func Arguments(schema json.RawMessage, word string) []byte {
	out := appendSchemaValue(nil, schema, word, 0)
	if len(out) == 0 || out[0] != '{' {
		// The top level of arguments is always an object.
		var node schemaNode
		_ = json.Unmarshal(schema, &node)
		return appendObject(nil, node.Properties, word, 0)
	}
	return out
}

func appendSchemaValue(dst []byte, raw json.RawMessage, word string, depth int) []byte {
	if depth > maxSchemaDepth {
		return append(dst, "null"...)
	}
	var node schemaNode
	if len(raw) == 0 || json.Unmarshal(raw, &node) != nil {
		return AppendString(dst, word)
	}
	if len(node.Enum) > 0 {
		return appendCompact(dst, node.Enum[0])
	}
	if len(node.Const) > 0 {
		return appendCompact(dst, node.Const)
	}
	if len(node.AnyOf) > 0 {
		return appendSchemaValue(dst, node.AnyOf[0], word, depth+1)
	}
	if len(node.OneOf) > 0 {
		return appendSchemaValue(dst, node.OneOf[0], word, depth+1)
	}
	switch schemaType(node) {
	case "string":
		return AppendString(dst, word)
	case "integer", "number":
		return append(dst, '1')
	case "boolean":
		return append(dst, "true"...)
	case "null":
		return append(dst, "null"...)
	case "array":
		if len(node.Items) == 0 {
			return append(dst, "[]"...)
		}
		dst = append(dst, '[')
		dst = appendSchemaValue(dst, node.Items, word, depth+1)
		return append(dst, ']')
	case "object":
		return appendObject(dst, node.Properties, word, depth)
	}
	return AppendString(dst, word)
}

func appendObject(dst []byte, props map[string]json.RawMessage, word string, depth int) []byte {
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, name)
		dst = append(dst, ':')
		dst = appendSchemaValue(dst, props[name], word, depth+1)
	}
	return append(dst, '}')
}

// schemaType returns the node's type, the first non-null one of a list, or
// the type implied by its shape.
func schemaType(node schemaNode) string {
	var single string
	if json.Unmarshal(node.Type, &single) == nil && single != "" {
		return single
	}
	var list []string
	if json.Unmarshal(node.Type, &list) == nil {
		for _, t := range list {
			if t != "null" {
				return t
			}
		}
		if len(list) > 0 {
			return "null"
		}
	}
	if node.Properties != nil {
		return "object"
	}
	if len(node.Items) > 0 {
		return "array"
	}
	return "string"
}

func appendCompact(dst []byte, raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append(dst, "null"...)
	}
	return append(dst, b.Bytes()...)
}
