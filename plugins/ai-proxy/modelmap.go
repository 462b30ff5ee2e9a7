package main

import (
	"regexp"
	"sort"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// This file is model mapping (plugins-C.md §6.6), made deterministic: an
// exact key first, then the longest matching prefix key ("gpt-4*"), then
// regex keys ("~gpt-(.*)") in lexical order of the key, then "*".

type prefixRule struct{ prefix, to string }

type regexRule struct {
	re *regexp.Regexp
	to string
}

// modelMapper maps request model names to provider model names.
type modelMapper struct {
	exact    map[string]string
	prefixes []prefixRule // longest first
	regexes  []regexRule
	fallback string
	hasAll   bool
}

func newModelMapper(m map[string]string) (*modelMapper, error) {
	mm := &modelMapper{exact: map[string]string{}}
	var errs pdk.ConfigErrors
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch {
		case k == "*":
			mm.fallback, mm.hasAll = v, true
		case strings.HasPrefix(k, "~"):
			re, err := regexp.Compile(k[1:])
			if err != nil {
				errs = append(errs, pdk.Errorf(k, "is not a valid regex: %v", err))
				continue
			}
			mm.regexes = append(mm.regexes, regexRule{re, v})
		case strings.HasSuffix(k, "*"):
			mm.prefixes = append(mm.prefixes, prefixRule{strings.TrimSuffix(k, "*"), v})
		case k == "":
			errs = append(errs, pdk.Errorf("", "a key must not be empty"))
		default:
			mm.exact[k] = v
		}
	}
	sort.SliceStable(mm.prefixes, func(i, j int) bool { return len(mm.prefixes[i].prefix) > len(mm.prefixes[j].prefix) })
	if len(errs) > 0 {
		return nil, errs
	}
	return mm, nil
}

// Map returns the provider model for model; an empty result (no match, or
// a mapping to "") keeps model.
func (mm *modelMapper) Map(model string) string {
	if mm == nil {
		return model
	}
	out := ""
	if v, ok := mm.exact[model]; ok {
		out = v
	} else if r, ok := mm.matchPrefix(model); ok {
		out = r
	} else if r, ok := mm.matchRegex(model); ok {
		out = r
	} else if mm.hasAll {
		out = mm.fallback
	}
	if out == "" {
		return model
	}
	return out
}

func (mm *modelMapper) matchPrefix(model string) (string, bool) {
	for _, p := range mm.prefixes {
		if strings.HasPrefix(model, p.prefix) {
			return p.to, true
		}
	}
	return "", false
}

func (mm *modelMapper) matchRegex(model string) (string, bool) {
	for _, r := range mm.regexes {
		if r.re.MatchString(model) {
			return r.re.ReplaceAllString(model, r.to), true
		}
	}
	return "", false
}
