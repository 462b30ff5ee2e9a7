package pdk

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// This file is typed configuration decoding: strict JSON decoding into a
// Go struct whose errors name the field, plus validation hooks.

// FieldError is one problem with a configuration, located by Field, a path
// such as "replace[0].pattern" or "_rules_[1].redis.service_name" ("" for
// the configuration as a whole).
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem", or just the problem for the whole
// configuration.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Errorf returns a FieldError for field with a formatted problem. Validate
// methods use it so their errors name the field.
func Errorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ConfigErrors is every problem found in one configuration, reported at
// once. Error joins them with newlines; the kit logs one line each.
type ConfigErrors []*FieldError

// Error joins the problems, one per line.
func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// FieldErrors flattens err into FieldErrors: a ConfigErrors or FieldError
// (also wrapped, also inside errors.Join) is taken apart, anything else
// becomes one FieldError without a field. nil gives nil.
func FieldErrors(err error) ConfigErrors {
	if err == nil {
		return nil
	}
	var out ConfigErrors
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case ConfigErrors:
			out = append(out, e...)
			return
		case *FieldError:
			out = append(out, e)
			return
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
			return
		}
		var ce ConfigErrors
		var fe *FieldError
		switch {
		case errors.As(err, &ce):
			out = append(out, ce...)
		case errors.As(err, &fe):
			out = append(out, fe)
		default:
			out = append(out, &FieldError{Problem: err.Error()})
		}
	}
	walk(err)
	return out
}

// PrefixErrors puts prefix in front of the field of every problem in err:
// PrefixErrors("redis", Errorf("timeout", …)) names "redis.timeout". A
// nested configuration's validator uses it to report paths from the top.
func PrefixErrors(prefix string, err error) error {
	es := FieldErrors(err)
	if es == nil {
		return nil
	}
	out := make(ConfigErrors, len(es))
	for i, e := range es {
		out[i] = &FieldError{Field: joinField(prefix, e.Field), Problem: e.Problem}
	}
	return out
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// Validator is implemented by configuration types that check themselves
// after decoding; DecodeConfig calls Validate on a pointer to the decoded
// value. Return FieldErrors (Errorf) or ConfigErrors so messages name the
// field. Validate may also fill derived fields (compiled regexps, clients).
type Validator interface {
	Validate() error
}

// Defaulter is implemented by configuration types with defaults;
// DecodeConfig calls SetDefaults on a pointer to the zero value before
// decoding, so fields the JSON does not set keep their defaults.
type Defaulter interface {
	SetDefaults()
}

// DecodeOptions tune DecodeConfigWith.
type DecodeOptions struct {
	// AllowUnknownFields ignores object keys that match no field (Higress's
	// encoding/json behaviour). By default they are errors, so a typo is
	// reported instead of silently doing nothing.
	AllowUnknownFields bool
}

// DecodeConfig decodes one plugin configuration (the global one or one
// rule's, as the kit hands it to Plugin.Parse) into a new T:
//
//  1. empty input means {};
//  2. the JSON is checked against T's shape and every problem is reported
//     at once, each naming its field: unknown keys, wrong types, integers
//     out of range;
//  3. SetDefaults (if *T is a Defaulter) runs before decoding and Validate
//     (if *T is a Validator) after.
//
// Field names come from json tags, as for encoding/json, but are matched
// exactly (case-sensitively). Errors are ConfigErrors.
func DecodeConfig[T any](raw []byte) (*T, error) {
	return DecodeConfigWith[T](raw, DecodeOptions{})
}

// DecodeConfigWith is DecodeConfig with options.
func DecodeConfigWith[T any](raw []byte, opts DecodeOptions) (*T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, ConfigErrors{{Problem: "not valid JSON: " + jsonErrorText(err)}}
	}
	if dec.More() {
		return nil, ConfigErrors{{Problem: "not valid JSON: unexpected data after the top-level value"}}
	}
	v := new(T)
	c := shapeChecker{allowUnknown: opts.AllowUnknownFields}
	c.check("", tree, reflect.TypeOf(v).Elem())
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	if d, ok := any(v).(Defaulter); ok {
		d.SetDefaults()
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, ConfigErrors{{Problem: jsonErrorText(err)}}
	}
	if val, ok := any(v).(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, FieldErrors(err)
		}
	}
	return v, nil
}

// jsonErrorText turns encoding/json errors into messages without Go type
// names.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("%s: must be %s, not %s", ute.Field, kindName(ute.Type), ute.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// shapeChecker compares a decoded JSON tree with a Go type.
type shapeChecker struct {
	allowUnknown bool
	errs         ConfigErrors
}

func (c *shapeChecker) fail(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Field: path, Problem: fmt.Sprintf(format, args...)})
}

var (
	rawMessageType  = reflect.TypeOf(json.RawMessage(nil))
	unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func (c *shapeChecker) check(path string, v any, t reflect.Type) {
	if v == nil { // null leaves the zero value, as in encoding/json
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		if _, ok := v.(string); !ok {
			c.fail(path, "must be a string, not %s", jsonKind(v))
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.fail(path, "must be a string, not %s", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.fail(path, "must be true or false, not %s", jsonKind(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "must be an integer, not %s", jsonKind(v))
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			c.fail(path, "must be an integer that fits in %d bits, not %s", t.Bits(), n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "must be a non-negative integer, not %s", jsonKind(v))
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			c.fail(path, "must be a non-negative integer that fits in %d bits, not %s", t.Bits(), n)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.fail(path, "must be a number, not %s", jsonKind(v))
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			if t.Elem().Kind() == reflect.Uint8 { // []byte is base64 text
				if _, ok := v.(string); ok {
					return
				}
			}
			c.fail(path, "must be a list, not %s", jsonKind(v))
			return
		}
		if t.Kind() == reflect.Array && len(arr) > t.Len() {
			c.fail(path, "must have at most %d elements, not %d", t.Len(), len(arr))
		}
		for i, e := range arr {
			c.check(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "must be an object, not %s", jsonKind(v))
			return
		}
		for _, k := range sortedKeys(obj) {
			c.check(joinField(path, k), obj[k], t.Elem())
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "must be an object, not %s", jsonKind(v))
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				if !c.allowUnknown {
					c.fail(joinField(path, k), "unknown field%s", suggest(k, fields))
				}
				continue
			}
			c.check(joinField(path, k), obj[k], ft)
		}
	default:
		c.fail(path, "cannot be decoded into a Go %s", t.Kind())
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs
// flattened, as encoding/json does) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = f.Type
			}
		}
	}
	walk(t)
	return out
}

// suggest lists the known fields, naming the likely one first when k
// differs from it only in case or by a small typo.
func suggest(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.EqualFold(n, k) || editDistance(n, k) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	if len(names) == 0 {
		return " (this configuration takes no fields)"
	}
	return " (known fields: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	if len(a) > 32 || len(b) > 32 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "the number " + v.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}
