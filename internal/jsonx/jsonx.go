// Package jsonx holds the JSON string appender shared by the hand-written
// encoders on hot paths (the access log, the LLM stand-in). It must stay
// free of reflection and allocation.
package jsonx

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// plainASCII marks the bytes appendString copies as they are: printable
// ASCII other than '"' and '\\'. One table load per byte keeps the common
// case (a path, a user agent) to a tight loop.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string. Besides what JSON requires (quote,
// backslash, C0 controls) it escapes DEL, the C1 controls U+0080..U+009F and
// U+2028/U+2029, so that a hostile path or user agent cannot smuggle terminal
// escape sequences or line breaks into the log. Invalid UTF-8 bytes become
// U+FFFD, keeping the line valid UTF-8.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r < 0xa0: // C1 controls
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
