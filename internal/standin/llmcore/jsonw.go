package llmcore

import (
	"strconv"

	"github.com/sluicegw/sluice/internal/jsonx"
)

// The stand-ins write their responses with these append helpers instead of
// encoding/json: the responses have a fixed shape, and skipping reflection
// keeps the non-streaming path cheap at benchmark rates.

// AppendString appends s as a JSON string literal (jsonx.AppendString:
// invalid UTF-8 becomes U+FFFD; control characters and U+2028/U+2029 are
// escaped).
func AppendString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }

// AppendInt appends n in decimal.
func AppendInt(dst []byte, n int) []byte {
	return strconv.AppendInt(dst, int64(n), 10)
}

// AppendNullableString appends s as a JSON string, or null when s is empty.
func AppendNullableString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return AppendString(dst, s)
}
