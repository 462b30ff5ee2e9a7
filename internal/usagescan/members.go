package usagescan

import "github.com/tidwall/gjson"

// Members walks the members of one JSON object without building values:
// each step returns a member's key (unescaped) and its value's raw text.
// It stops at the end of the object or at anything malformed. Usage
// extraction runs it on every response a usage-reading plugin sees, in
// a Wasm guest where a gjson.ForEach with its closure and Result per
// member costs several times more.
type Members struct {
	s string
	i int
}

// NewMembers starts at raw, which must be an object ('{' after optional
// white space); ok is false otherwise.
func NewMembers(raw string) (m Members, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return Members{}, false
	}
	return Members{s: raw, i: i + 1}, true
}

// Next returns the next member; ok is false at the end or on malformed
// input.
func (m *Members) Next() (key, value string, ok bool) {
	s := m.s
	i := skipSpace(s, m.i)
	if i < len(s) && s[i] == ',' {
		i = skipSpace(s, i+1)
	}
	if i >= len(s) || s[i] != '"' {
		m.i = len(s)
		return "", "", false
	}
	end, escaped := stringEnd(s, i)
	if end < 0 {
		m.i = len(s)
		return "", "", false
	}
	key = s[i+1 : end-1]
	if escaped {
		key = gjson.Parse(s[i:end]).Str
	}
	i = skipSpace(s, end)
	if i >= len(s) || s[i] != ':' {
		m.i = len(s)
		return "", "", false
	}
	i = skipSpace(s, i+1)
	vend := valueEnd(s, i)
	if vend <= i {
		m.i = len(s)
		return "", "", false
	}
	m.i = vend
	return key, s[i:vend], true
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at s[i] == '"', and whether it contains escapes; -1 when it is
// not closed.
func stringEnd(s string, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// valueEnd returns the index after the value that starts at s[i]; i when
// there is none.
func valueEnd(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '"':
		end, _ := stringEnd(s, i)
		if end < 0 {
			return i
		}
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				end, _ := stringEnd(s, j)
				if end < 0 {
					return i
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return i
	}
	j := i
	for j < len(s) {
		switch s[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
