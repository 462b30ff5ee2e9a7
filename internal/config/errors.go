package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem found in the configuration, or one warning. It names
// the place (file, line), the resource (kind, name), the field (a path of
// YAML names such as spec.endpoints[1].address), what is wrong and what to
// do about it. Messages never contain secret values.
type Error struct {
	File    string
	Line    int
	Kind    string
	Name    string
	Field   string
	Message string
	Hint    string
}

// Error renders e as "file:line: Kind/name: spec.field.path: message (hint)".
// Empty parts are left out together with their separator.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	case e.File != "":
		b.WriteString(e.File)
		b.WriteString(": ")
	case e.Line > 0:
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	switch {
	case e.Kind != "" && e.Name != "":
		b.WriteString(e.Kind)
		b.WriteByte('/')
		b.WriteString(e.Name)
		b.WriteString(": ")
	case e.Kind != "":
		b.WriteString(e.Kind)
		b.WriteString(": ")
	case e.Name != "":
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	msg := e.Message
	if msg == "" {
		msg = "invalid"
	}
	b.WriteString(msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteByte(')')
	}
	return b.String()
}

// ErrorList is every problem found in one load. Load and Parse return it
// sorted by file, then line; the order of findings on the same line is the
// order they were found in.
type ErrorList []*Error

// Error renders one problem per line.
func (l ErrorList) Error() string {
	sorted := make(ErrorList, len(l))
	copy(sorted, l)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual problems to errors.Is and errors.As, so
// errors.As(err, &e) with e a *Error finds the first one.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].File != l[j].File {
			return l[i].File < l[j].File
		}
		return l[i].Line < l[j].Line
	})
}

// findings collects errors and warnings of one load.
type findings struct {
	errs     ErrorList
	warnings ErrorList
}

func (f *findings) err(e *Error)  { f.errs = append(f.errs, e) }
func (f *findings) warn(e *Error) { f.warnings = append(f.warnings, e) }
