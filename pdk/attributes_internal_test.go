package pdk

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestWrittenLogMergeMatchesDecoding: merging over the fields kept from
// the last write (what WriteAttributesToLog does when the property still
// holds its own output) gives the same bytes as decoding that output
// again, write after write.
func TestWrittenLogMergeMatchesDecoding(t *testing.T) {
	values := []any{
		"plain", `quote " backslash \ <tag> & é 😀 ` + "\u2028\n\t\x01", "", int64(-7), 42, uint32(9), 3.25, 1e21, true, false, nil,
		json.Number("12345678901234567890"), map[string]int64{"cached_tokens": 3, "b": 0}, map[string]any{"z": "y", "a": []any{1, "x"}},
		[]string{"a", "b"},
	}
	keys := []string{"model", "input_token", "output_token", "chat_id", "consumer", "question", "a", "zz", "mid"}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var kept *logMerge
		var prev []byte
		for write := range 4 {
			attrs := map[string]any{}
			for range 1 + r.IntN(5) {
				attrs[keys[r.IntN(len(keys))]] = values[r.IntN(len(values))]
			}
			want, err := MergeLog(prev, attrs)
			if err != nil {
				t.Fatalf("round %d write %d: MergeLog: %v", round, write, err)
			}
			var m logMerge
			if kept == nil {
				if m, err = newLogMerge(prev, len(attrs)); err != nil {
					t.Fatal(err)
				}
			} else {
				m = kept.clone(len(attrs))
			}
			got, err := m.addAll(attrs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("round %d write %d: merged over kept fields\n got %s\nwant %s (attrs %s)", round, write, got, want, fmt.Sprint(attrs))
			}
			kept, prev = &m, got
		}
	}
}
