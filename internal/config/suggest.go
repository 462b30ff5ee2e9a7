package config

import (
	"fmt"
	"strings"
)

// closest returns the candidate nearest to word by edit distance, compared
// case-insensitively, or "" when none is close enough to be a likely typo.
func closest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	lw := strings.ToLower(word)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 {
		return ""
	}
	// Allow roughly one edit per three characters, at least one and at
	// most three: "adress" → "address", "lisetners" → "listeners".
	limit := len([]rune(word)) / 3
	limit = max(1, min(limit, 3))
	if bestDist > limit {
		return ""
	}
	return best
}

// didYouMean is a hint suggesting the closest candidate, or "".
func didYouMean(word string, candidates []string) string {
	if c := closest(word, candidates); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return ""
}

// oneOf is a hint listing the valid values, with a suggestion first when
// one is close.
func oneOf(word string, candidates []string) string {
	return hintJoin(didYouMean(word, candidates), "valid: "+strings.Join(candidates, ", "))
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// hintJoin joins hint parts: after a question ("did you mean x?") with a
// space, otherwise with "; ".
func hintJoin(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), "?") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(p)
	}
	return b.String()
}
