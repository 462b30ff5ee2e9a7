package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's examples are the probe's documentation: they must parse.
func TestReadmeExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## go/probe configuration language")
	end := strings.Index(text, "## The other plugins")
	if start < 0 || end < start {
		t.Fatal("README.md: probe section not found")
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(text[start:end], -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d json examples, want at least 5", len(blocks))
	}
	for i, blk := range blocks {
		if _, err := parseConfig([]byte(blk[1])); err != nil {
			t.Errorf("example %d:\n%s\n%v", i, blk[1], err)
		}
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	_, err := parseConfig([]byte(`{"on": {
		"bogus": [],
		"tick": {"action": 1},
		"request_headers": [
			{"op": "nope"},
			{"op": "get_header"},
			{"op": "get_header", "key": "a", "to": "nowhere:x"},
			{"op": "get_body", "encoding": "rot13"},
			{"op": "set_header", "key": "a", "map": "no_such_map"},
			{"op": "continue_stream", "when": "sometimes"},
			{"op": "http_call", "cluster": "c", "then": [{"op": "get_var"}]}
		]}}`))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{
		"on.bogus: unknown callback",
		"on.tick.action: this callback returns no action",
		`on.request_headers.steps[0] (nope): unknown op "nope"`,
		`on.request_headers.steps[1] (get_header): missing "key"`,
		`steps[2] (get_header): output "nowhere:x": unknown kind "nowhere"`,
		`steps[3] (get_body): unknown encoding "rot13"`,
		`steps[4] (set_header): unknown map "no_such_map"`,
		`steps[5] (continue_stream): when "sometimes"`,
		`steps[6].then[0] (get_var): missing "name"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestParseConfigRejectsUnknownField(t *testing.T) {
	_, err := parseConfig([]byte(`{"on": {"log": [{"op": "log", "mesage": "typo"}]}}`))
	if err == nil || !strings.Contains(err.Error(), `unknown field "mesage"`) {
		t.Fatalf("got %v, want an unknown-field error", err)
	}
}

func TestEmptyConfigIsValid(t *testing.T) {
	for _, in := range []string{"", "  ", "{}"} {
		if _, err := parseConfig([]byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		in          string
		eos, notEOS uint32
	}{
		{`4`, 4, 4},
		{`"continue"`, 0, 0},
		{`"stop_all_watermark"`, 4, 4},
		{`"pause_until_eos"`, 0, 1},
		{`"continue_on_eos"`, 0, 3},
		{`{"eos": 7, "not_eos": 9}`, 7, 9},
	} {
		cfg, err := parseConfig([]byte(`{"on": {"request_body": {"action": ` + tc.in + `}}}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		a := cfg.On["request_body"].Action
		if a.eos != tc.eos || a.notEOS != tc.notEOS {
			t.Errorf("%s: got eos %d not_eos %d, want %d %d", tc.in, a.eos, a.notEOS, tc.eos, tc.notEOS)
		}
	}
	for _, bad := range []string{`"halt"`, `{"eos": 1}`, `-1`} {
		if _, err := parseConfig([]byte(`{"on": {"request_body": {"action": ` + bad + `}}}`)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

func TestSinks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sink
	}{
		{"header:x-a", sink{kind: "header", name: "x-a"}},
		{"header:response_headers:x-a", sink{kind: "header", name: "x-a", mapType: 2, hasMap: true}},
		{"header:6:x-a", sink{kind: "header", name: "x-a", mapType: 6, hasMap: true}},
		{"header:request_headers::path", sink{kind: "header", name: ":path", hasMap: true}},
		{"header::path", sink{kind: "header", name: ":path"}},
		{"log:label", sink{kind: "log", name: "label"}},
		{"var:root.x", sink{kind: "var", name: "root.x"}},
		{"property:p", sink{kind: "property", name: "p"}},
		{"shared:k", sink{kind: "shared", name: "k"}},
	} {
		got, err := parseSink(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSink(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestPairsRoundTrip(t *testing.T) {
	in := [][2]string{{":path", "/"}, {"a", ""}, {"a", "2"}}
	out, err := parsePairs(serializePairs(in))
	if err != nil || len(out) != len(in) {
		t.Fatalf("got %v, %v", out, err)
	}
	for i := range in {
		if in[i] != out[i] {
			t.Errorf("pair %d: got %v, want %v", i, out[i], in[i])
		}
	}
	if got := encode(serializePairs(in), "pairs"); got != `[[":path","/"],["a",""],["a","2"]]` {
		t.Errorf("pairs encoding: %s", got)
	}
	if got := encode(nil, "pairs"); got != "[]" {
		t.Errorf("empty pairs: %s", got)
	}
	for _, bad := range [][]byte{{1, 0}, {1, 0, 0, 0}, {1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'a'}} {
		if _, err := parsePairs(bad); err == nil {
			t.Errorf("parsePairs(%v): want an error", bad)
		}
	}
}

func TestEncodings(t *testing.T) {
	le8 := []byte{0, 0, 0x48, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		in   []byte
		enc  string
		want string
	}{
		{le8, "u64le", "4718592"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "i64le", "-1"},
		{[]byte{2, 0, 0, 0}, "u32le", "2"},
		{[]byte{1}, "bool", "true"},
		{[]byte{1, 2}, "u64le", "bad-length:2"},
		{[]byte("ab"), "hex", "6162"},
		{[]byte("ab"), "base64", "YWI="},
		{[]byte("abc"), "len", "3"},
		{[]byte("abc"), "raw", "abc"},
	} {
		if got := encode(tc.in, tc.enc); got != tc.want {
			t.Errorf("encode(%v, %s) = %q, want %q", tc.in, tc.enc, got, tc.want)
		}
	}
}

func TestRespArray(t *testing.T) {
	if got := string(respArray([]string{"INCR", "k"})); got != "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n" {
		t.Errorf("got %q", got)
	}
}
