package telemetry

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicegw/sluice/internal/jsonx"
)

// The access log is encoded by hand rather than with encoding/json because it
// runs once per request: these appenders write straight into a pooled buffer
// with no reflection and no allocation.

const hexDigits = "0123456789abcdef"

// plainInString marks the bytes appendRawJSON copies without a second look
// while inside a JSON string: everything but the quote, the backslash, DEL and
// the lead bytes of C1 controls (0xc2) and U+2028/U+2029 (0xe2).
var plainInString = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c != '"' && c != '\\' && c != 0x7f && c != 0xc2 && c != 0xe2
	}
	return t
}()

// appendString appends s as a JSON string (see jsonx.AppendString).
func appendString(b []byte, s string) []byte { return jsonx.AppendString(b, s) }

// appendMillis appends d in milliseconds with microsecond precision
// ("1234.567"), as a JSON number.
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendRawJSON appends raw as embedded JSON when it is valid JSON and valid
// UTF-8, with insignificant whitespace removed so the log stays one line per
// record, and DEL, C1 controls and U+2028/U+2029 inside strings escaped as
// [appendString] does; otherwise it appends raw as a JSON string.
func appendRawJSON(b []byte, raw []byte) []byte {
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return appendString(b, string(raw))
	}
	inString, escaped := false, false
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString && !escaped && plainInString[c] {
			continue
		}
		if !inString {
			switch c {
			case '"':
				inString = true
			case ' ', '\t', '\n', '\r':
				b = append(b, raw[start:i]...)
				start = i + 1
			}
			continue
		}
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			inString = false
		case c == 0x7f:
			b = append(b, raw[start:i]...)
			b = append(b, `\u007f`...)
			start = i + 1
		case c == 0xc2 && i+1 < len(raw) && raw[i+1] < 0xa0: // C1 control (valid UTF-8, so raw[i+1] ≥ 0x80)
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[raw[i+1]>>4], hexDigits[raw[i+1]&0xf])
			i++
			start = i + 1
		case c == 0xe2 && i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xa8 || raw[i+2] == 0xa9): // U+2028, U+2029
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xf])
			i += 2
			start = i + 1
		}
	}
	return append(b, raw[start:]...)
}
