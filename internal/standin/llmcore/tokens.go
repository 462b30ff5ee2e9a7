package llmcore

import (
	"unicode"
	"unicode/utf8"
)

// The stand-ins' tokenizer. A token is either a maximal run of word
// characters (Unicode letters, digits and combining marks) or a single
// character that is neither a word character nor white space (punctuation,
// symbols). White space only separates tokens.
//
//	"Echo: hello, world!" → Echo | : | hello | , | world | !  (6 tokens)
//
// It is cheap, deterministic and close enough to real tokenizers in scale for
// gateway accounting tests; it is not meant to match any real model.

// CountTokens returns the number of tokens in s.
func CountTokens(s string) int {
	n := 0
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case isASCIIWord(c):
				if !inWord {
					n++
					inWord = true
				}
			case isASCIISpace(c):
				inWord = false
			default:
				n++
				inWord = false
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case isWordRune(r):
			if !inWord {
				n++
				inWord = true
			}
		case unicode.IsSpace(r):
			inWord = false
		default:
			n++
			inWord = false
		}
	}
	return n
}

// CutTokens returns the prefix of s that holds its first n tokens (ending
// right after the n-th token) and whether anything was cut.
func CutTokens(s string, n int) (string, bool) {
	if n <= 0 {
		return "", len(s) > 0
	}
	count := 0
	inWord := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		switch {
		case isWordRune(r):
			if !inWord {
				if count == n {
					return s[:i], true
				}
				count++
				inWord = true
			}
		case isSpaceRune(r):
			inWord = false
		default:
			if count == n {
				return s[:i], true
			}
			count++
			inWord = false
		}
		i += size
	}
	return s, false
}

// trimTrailingSpace is used after CutTokens so a cut answer ends on a token.
func trimTrailingSpace(s string) string {
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isSpaceRune(r) {
			break
		}
		s = s[:len(s)-size]
	}
	return s
}

// forEachWord calls fn with every run of word characters in s.
func forEachWord(s string, fn func(word string)) {
	start := -1
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			fn(s[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		fn(s[start:])
	}
}

func isASCIIWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIIWord(byte(r))
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isSpaceRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIISpace(byte(r))
	}
	return unicode.IsSpace(r)
}
