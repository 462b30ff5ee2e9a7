package pdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// This file is user attributes and where they go: merged into the shared
// ai_log property (plugins-A.md §0.5, plugins-B.md §0.6) and written as
// trace_span_tag.<name> span attributes.

// AILogKey is the property several plugins merge their attributes into;
// the access log prints it with %FILTER_STATE(wasm.ai_log:PLAIN)%.
const AILogKey = "ai_log"

// TraceSpanTagPrefix prefixes properties the host turns into span
// attributes.
const TraceSpanTagPrefix = "trace_span_tag."

// SetAttribute records a user attribute of the request (a JSON-encodable
// value) for WriteAILog and WriteTraceTags.
func (c *Context) SetAttribute(key string, value any) {
	if c.attrs == nil {
		c.attrs = map[string]any{}
	}
	c.attrs[key] = value
}

// Attribute returns a user attribute.
func (c *Context) Attribute(key string) (any, bool) {
	v, ok := c.attrs[key]
	return v, ok
}

// Attributes returns the request's user attributes (the map itself).
func (c *Context) Attributes() map[string]any { return c.attrs }

// WriteAILog merges the request's attributes into the ai_log property.
func (c *Context) WriteAILog() error { return c.WriteAttributesToLog(AILogKey) }

// WriteAttributesToLog merges the request's attributes into the property
// key: the property's current JSON object (written escaped by an earlier
// plugin) is read, this plugin's attributes are laid over it (this plugin
// wins on a shared key), and the result is written back escaped. Several
// plugins thus build one object.
func (c *Context) WriteAttributesToLog(key string) error {
	prev, _ := GetProperty(key)
	merged, err := MergeLog(prev, c.attrs)
	if err != nil {
		c.Log().Warnf("%s held no JSON object, overwriting it: %v", key, err)
	}
	return c.SetProperty(key, merged)
}

// MergeLog lays attrs over the JSON object held escaped in prev (the form
// {\"k\":\"v\"}, without surrounding quotes; an unescaped object is
// accepted too) and returns the merged object escaped the same way. Keys
// come out sorted; numbers keep their text. When prev holds no JSON object
// the result has attrs only and err says why.
func MergeLog(prev []byte, attrs map[string]any) ([]byte, error) {
	obj := map[string]any{}
	var perr error
	if len(bytes.TrimSpace(prev)) > 0 {
		perr = decodeLogObject(prev, obj)
		if perr != nil {
			obj = map[string]any{}
		}
	}
	for k, v := range attrs {
		obj[k] = v
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode attributes: %w", err)
	}
	return EscapeJSONString(raw), perr
}

// decodeLogObject reads prev, escaped or not, into obj.
func decodeLogObject(prev []byte, obj map[string]any) error {
	unescaped := make([]byte, 0, len(prev)+2)
	unescaped = append(unescaped, '"')
	unescaped = append(unescaped, prev...)
	unescaped = append(unescaped, '"')
	var s string
	src := prev
	if json.Unmarshal(unescaped, &s) == nil {
		src = []byte(s)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	return dec.Decode(&obj)
}

// EscapeJSONString escapes s as the inside of a JSON string literal
// (without the quotes), as encoding/json does.
func EscapeJSONString(s []byte) []byte {
	q, _ := json.Marshal(string(s))
	return q[1 : len(q)-1]
}

// SetTraceTag sets span attribute name (property trace_span_tag.<name>).
// An empty value is not written.
func (c *Context) SetTraceTag(name, value string) error {
	if value == "" {
		return fmt.Errorf("trace tag %s: empty value", name)
	}
	return c.SetProperty(TraceSpanTagPrefix+name, []byte(value))
}

// WriteTraceTags writes every user attribute as a span attribute (values
// formatted with fmt.Sprint; empty ones skipped), in key order.
func (c *Context) WriteTraceTags() {
	keys := make([]string, 0, len(c.attrs))
	for k := range c.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_ = c.SetTraceTag(k, fmt.Sprint(c.attrs[k]))
	}
}
