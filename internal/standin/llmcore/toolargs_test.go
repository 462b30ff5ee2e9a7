package llmcore

import (
	"encoding/json"
	"testing"
)

func TestArguments(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{"no schema", ``, `{}`},
		{"empty object", `{"type":"object"}`, `{}`},
		{"typical", `{"type":"object","properties":{"location":{"type":"string"},"days":{"type":"integer"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}`,
			`{"days":1,"location":"Paris","unit":"celsius"}`},
		{"all types", `{"properties":{"b":{"type":"boolean"},"n":{"type":"number"},"z":{"type":"null"},"a":{"type":"array","items":{"type":"integer"}},"o":{"type":"object","properties":{"x":{"type":"string"}}},"e":{"type":"array"}}}`,
			`{"a":[1],"b":true,"e":[],"n":1,"o":{"x":"Paris"},"z":null}`},
		{"type list", `{"type":"object","properties":{"s":{"type":["null","string"]}}}`, `{"s":"Paris"}`},
		{"const and anyOf", `{"type":"object","properties":{"c":{"const":{"k": 2}},"u":{"anyOf":[{"type":"integer"},{"type":"string"}]}}}`, `{"c":{"k":2},"u":1}`},
		{"non-object top level", `{"type":"string"}`, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Arguments(json.RawMessage(tc.schema), "Paris"))
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("arguments %s are not valid JSON", got)
			}
		})
	}
}

func TestArgumentsDeepNestingIsBounded(t *testing.T) {
	schema := `{"type":"string"}`
	for range 20 {
		schema = `{"type":"object","properties":{"n":` + schema + `}}`
	}
	got := Arguments(json.RawMessage(schema), "w")
	if !json.Valid(got) {
		t.Fatalf("invalid JSON: %s", got)
	}
}

func TestArgumentWord(t *testing.T) {
	tests := map[string]string{
		"What's the weather in Paris?": "Paris",
		"":                             "mock",
		"???":                          "mock",
		"temperature in 東京":            "東京",
	}
	for in, want := range tests {
		if got := ArgumentWord(in); got != want {
			t.Errorf("ArgumentWord(%q) = %q, want %q", in, got, want)
		}
	}
}
