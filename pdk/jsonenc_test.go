package pdk

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONValueMatchesEncodingJSON: the ai_log encoder writes what
// encoding/json writes for the attribute types it handles itself.
func TestAppendJSONValueMatchesEncodingJSON(t *testing.T) {
	for _, v := range []any{
		map[string]int64(nil), map[string]int64{}, map[string]int64{"b": 2, "a": -1},
		map[string]any(nil), map[string]any{"z": "<&>", "a": []any{1.5, nil, true}},
		[]any(nil), []string{"x", "é\u2028"}, "plain", int64(-3), uint32(7), 1e21, float32(0.1),
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONValue(nil, v)
		if err != nil || string(got) != string(want) {
			t.Errorf("%#v: got %s (%v), want %s", v, got, err, want)
		}
	}
}
