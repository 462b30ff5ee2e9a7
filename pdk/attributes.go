package pdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
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
// plugins thus build one object. When the property still holds what this
// request's last call wrote, the fields kept from that call are reused
// instead of decoding the property again (same bytes).
func (c *Context) WriteAttributesToLog(key string) error {
	prev, _ := GetProperty(key)
	var m logMerge
	if w := c.lastLog; w != nil && w.key == key && bytes.Equal(prev, w.bytes) {
		// The property holds what this plugin wrote last: merge over the
		// fields kept from then instead of decoding it again.
		m = w.merge.clone(len(c.attrs))
	} else {
		var err error
		if m, err = newLogMerge(prev, len(c.attrs)); err != nil {
			c.Log().Warnf("%s held no JSON object, overwriting it: %v", key, err)
		}
	}
	merged, err := m.addAll(c.attrs)
	if err != nil {
		return err
	}
	if c.lastLog == nil {
		c.lastLog = &writtenLog{}
	}
	c.lastLog.key, c.lastLog.bytes, c.lastLog.merge = key, merged, m
	return c.SetProperty(key, merged)
}

// writtenLog is a log property as WriteAttributesToLog wrote it: the
// bytes, and the fields they were built from.
type writtenLog struct {
	key   string
	bytes []byte
	merge logMerge
}

// MergeLog lays attrs over the JSON object held escaped in prev (the form
// {\"k\":\"v\"}, without surrounding quotes; an unescaped object is
// accepted too) and returns the merged object escaped the same way. Keys
// come out sorted; numbers keep their text. When prev holds no JSON object
// the result has attrs only and err says why.
//
// The output is what encoding/json gives for the decoded map (strings
// escaped as it escapes them, nested objects with sorted keys), built
// directly: prev is walked with gjson and common attribute types are
// encoded without reflection.
func MergeLog(prev []byte, attrs map[string]any) ([]byte, error) {
	m, perr := newLogMerge(prev, len(attrs))
	merged, err := m.addAll(attrs)
	if err != nil {
		return nil, err
	}
	return merged, perr
}

// newLogMerge starts a merge with the fields of prev (none, and an error
// saying why, when prev holds no JSON object).
func newLogMerge(prev []byte, more int) (logMerge, error) {
	m := logMerge{fields: make([]logField, 0, more+8), vals: make([]byte, 0, 512)}
	var perr error
	if len(bytes.TrimSpace(prev)) > 0 {
		if perr = m.addPrev(prev); perr != nil {
			m.reset()
		}
	}
	return m, perr
}

// addAll lays attrs over the fields and returns the merged object escaped.
func (m *logMerge) addAll(attrs map[string]any) ([]byte, error) {
	for k, v := range attrs {
		if err := m.add(k, v); err != nil {
			return nil, fmt.Errorf("encode attributes: %w", err)
		}
	}
	return m.escaped(), nil
}

// clone copies the merge, with room for more fields.
func (m *logMerge) clone(more int) logMerge {
	return logMerge{fields: append(make([]logField, 0, len(m.fields)+more), m.fields...), vals: append(make([]byte, 0, len(m.vals)+256), m.vals...)}
}

// logMerge builds the merged object: fields in the order added (a later
// field replaces an earlier one of the same key), their encoded values in
// one buffer.
type logMerge struct {
	fields []logField
	vals   []byte
}

type logField struct {
	key        string
	start, end int // the value in vals
}

func (m *logMerge) reset() { m.fields, m.vals = m.fields[:0], m.vals[:0] }

// add encodes v as the value of key.
func (m *logMerge) add(key string, v any) error {
	start := len(m.vals)
	b, err := appendJSONValue(m.vals, v)
	if err != nil {
		return err
	}
	m.vals = b
	m.fields = append(m.fields, logField{key: key, start: start, end: len(b)})
	return nil
}

// addPrev adds the fields of the object in prev, escaped or not.
func (m *logMerge) addPrev(prev []byte) error {
	src, ok := unescapeLogObject(prev)
	if !ok {
		src = bytesString(prev)
	}
	root := gjson.Parse(src)
	if !root.IsObject() || !gjson.Valid(src) {
		// Not plainly a JSON object: decode as encoding/json does
		// (leading value only, errors as it words them).
		obj := map[string]any{}
		if err := decodeLogObject(prev, obj); err != nil {
			return err
		}
		for k, v := range obj {
			if err := m.add(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	root.ForEach(func(k, v gjson.Result) bool {
		start := len(m.vals)
		m.vals = appendCanonical(m.vals, v)
		m.fields = append(m.fields, logField{key: k.String(), start: start, end: len(m.vals)})
		return true
	})
	return nil
}

// unescapeLogObject reads prev as the inside of a JSON string literal.
func unescapeLogObject(prev []byte) (string, bool) {
	if bytes.IndexByte(prev, '\\') < 0 {
		// Nothing escaped: a valid literal only if no quote or control
		// character needs escaping; then it is prev itself.
		for _, c := range prev {
			if c == '"' || c < 0x20 {
				return "", false
			}
		}
		return bytesString(prev), true
	}
	quoted := make([]byte, 0, len(prev)+2)
	quoted = append(quoted, '"')
	quoted = append(quoted, prev...)
	quoted = append(quoted, '"')
	if !gjson.ValidBytes(quoted) {
		return "", false
	}
	return gjson.ParseBytes(quoted).String(), true
}

// escaped returns the merged object, keys sorted, escaped as the inside of
// a JSON string literal.
func (m *logMerge) escaped() []byte {
	slices.SortStableFunc(m.fields, func(a, b logField) int { return strings.Compare(a.key, b.key) })
	obj := make([]byte, 0, len(m.vals)+16*len(m.fields)+2)
	obj = append(obj, '{')
	kept := m.fields[:0]
	for i, f := range m.fields {
		if i+1 < len(m.fields) && m.fields[i+1].key == f.key {
			continue // a later field of the same key wins
		}
		kept = append(kept, f)
		if len(obj) > 1 {
			obj = append(obj, ',')
		}
		obj = appendQuoted(obj, f.key)
		obj = append(obj, ':')
		obj = append(obj, m.vals[f.start:f.end]...)
	}
	obj = append(obj, '}')
	m.fields = kept
	return appendEscaped(make([]byte, 0, len(obj)+len(obj)/4), bytesString(obj))
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
	return appendEscaped(make([]byte, 0, len(s)+len(s)/8), bytesString(s))
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
		_ = c.SetTraceTag(k, sprint(c.attrs[k]))
	}
}
