package llmcore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// DecodeError says why a request body could not be decoded, in the terms an
// API error message needs.
type DecodeError struct {
	// Syntax is true when the body is not valid JSON at all.
	Syntax bool
	// Offset is the byte offset of the problem.
	Offset int64
	// Field is the dotted path of a mistyped field ("messages.role"), or ""
	// when the body itself has the wrong type.
	Field string
	// Expected and Got describe a type mismatch ("a string", "a number").
	Expected, Got string
	// Err is the decoder's error.
	Err error
}

func (e *DecodeError) Error() string {
	switch {
	case e.Syntax:
		return fmt.Sprintf("%v (at byte %d)", e.Err, e.Offset)
	case e.Field == "":
		return fmt.Sprintf("the body must be a JSON object, but got %s instead", e.Got)
	default:
		return fmt.Sprintf("invalid type for '%s': expected %s, but got %s instead", e.Field, e.Expected, e.Got)
	}
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode unmarshals a request body into v. Unknown fields are accepted, as a
// stand-in must take whatever a real client sends.
func Decode(body []byte, v any) *DecodeError {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Syntax: true, Offset: se.Offset, Err: err}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &DecodeError{Offset: te.Offset, Field: te.Field, Expected: describeType(te.Type), Got: describeValue(te.Value), Err: err}
	}
	return &DecodeError{Syntax: true, Err: err}
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

func describeValue(v string) string {
	v, _, _ = strings.Cut(v, " ")
	switch v {
	case "bool":
		return "a boolean"
	case "number":
		return "a number"
	case "string":
		return "a string"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	return v
}
