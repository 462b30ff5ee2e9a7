package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// This file turns yaml.v3 parser errors into Errors on the right line.

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError converts a yaml.v3 parser error into an Error with a line.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		// yaml.v3 leaves the line out for problems on the first line and
		// for bad characters; find those ourselves.
		line = badCharLine(data)
	}
	line = problemLine(data, msg, line)
	e := &Error{File: file, Line: line, Message: "invalid YAML: " + msg}
	switch l := lineText(data, line); {
	case strings.Contains(l, "\t") && strings.TrimLeft(l, " \t") != l:
		e.Hint = "indent with spaces; YAML does not allow tabs for indentation"
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "did not find expected '-' indicator"):
		e.Hint = "check the indentation of this line against the lines above it"
	case strings.Contains(msg, "mapping values are not allowed"):
		e.Hint = "quote values that contain \": \", and put a space after each key's colon"
	}
	return e
}

// maxProblemSearchLines bounds the files problemLine searches: past it,
// the re-parsing would cost seconds.
const maxProblemSearchLines = 20000

// problemLine finds the line a syntax error is on. yaml.v3 reports where
// the enclosing construct starts (a mapping that began lines earlier), not
// where parsing failed. A prefix of the file that ends before the bad line
// parses, or fails differently; one that ends on it fails with the same
// message. The first such prefix is searched for line by line just after
// the reported line, where it usually is, then by bisection (a few parses
// even for a long file). If none fails alike, the reported line stands.
func problemLine(data []byte, msg string, reported int) int {
	var ends []int // offset just past each line
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	if len(ends) > maxProblemSearchLines {
		return reported
	}
	failsAlike := func(n int) bool {
		err := parseAll(data[:ends[n-1]])
		if err == nil {
			return false
		}
		m := strings.TrimPrefix(err.Error(), "yaml: ")
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			m = sm[2]
		}
		return m == msg
	}
	lo := max(reported, 1)
	const linear = 32
	for n := lo; n <= len(ends) && n < lo+linear; n++ {
		if failsAlike(n) {
			return n
		}
	}
	// Bisect (lo+linear, len(ends)] for the first prefix failing alike.
	lo, hi := lo+linear, len(ends)
	if lo > hi || !failsAlike(hi) {
		return reported
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if failsAlike(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi
}

// parseAll parses every document of data, returning the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// badCharLine is the line of the first byte YAML cannot read (invalid
// UTF-8 or a control character), or 1 when there is none.
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		} else if r != '\t' && r != '\r' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85) ||
			(r >= 0xd800 && r <= 0xdfff) || r == 0xfffe || r == 0xffff) {
			return line
		}
		i += size
	}
	return 1
}

// lineText is the text of the 1-based line n of data.
func lineText(data []byte, n int) string {
	if n < 1 {
		return ""
	}
	for l := range bytes.Lines(data) {
		n--
		if n == 0 {
			return string(l)
		}
	}
	return ""
}
