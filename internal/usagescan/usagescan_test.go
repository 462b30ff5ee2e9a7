package usagescan

import (
	"strings"
	"testing"
)

var events = []string{
	// OpenAI chat completion.
	`{"id":"c1","model":"gpt-4o","usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":3}}}`,
	// OpenAI responses API, streaming completion event.
	`{"type":"response.completed","response":{"model":"gpt-4.1","usage":{"input_tokens":9,"output_tokens":4,"total_tokens":13,"output_tokens_details":{"reasoning_tokens":2}}}}`,
	// Anthropic message_start.
	`{"type":"message_start","message":{"model":"claude-3-5","usage":{"input_tokens":25,"output_tokens":1}}}`,
	// Gemini.
	`{"modelVersion":"gemini-2.0","usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":8,"totalTokenCount":15,"thoughtsTokenCount":2}}`,
	// A value longer than 127 bytes (two-byte length), escapes kept raw.
	`{"model":"` + strings.Repeat("m", 200) + `","usage":{"input_tokens":1,"cache_read_input_tokens":4,"x\"y":1}}`,
}

func TestScan(t *testing.T) {
	var s Fields
	s.Scan(events[0])
	for f, want := range map[int]string{Model: `"gpt-4o"`, UsagePromptTokens: "12", UsageCompletionTokens: "5",
		UsageTotalTokens: "17", UsagePromptDetails: `{"cached_tokens":3}`} {
		if s[f] != want {
			t.Errorf("slot %d = %q, want %q", f, s[f], want)
		}
	}
	if v, ok := s.First(InputFields[:]); !ok || v != "12" {
		t.Errorf("First(InputFields) = %q, %v", v, ok)
	}
	var g Fields
	g.Scan(events[3])
	if g[ModelVersion] != `"gemini-2.0"` || g[MetaThoughts] != "2" || g[Model] != "" {
		t.Errorf("gemini scan: %q", g)
	}
	var none Fields
	none.Scan(`[1,2]`)
	if none != (Fields{}) {
		t.Errorf("a non-object gave %q", none)
	}
}

func TestAppendDecodeRoundTrip(t *testing.T) {
	for _, ev := range events {
		var s Fields
		s.Scan(ev)
		wire := Append(nil, &s)
		var got Fields
		if !Decode(string(wire), &got) {
			t.Fatalf("Decode(Append(scan(%s))) failed", ev)
		}
		if got != s {
			t.Errorf("round trip of %s:\n got %q\nwant %q", ev, got, s)
		}
	}
	var empty Fields
	if w := Append(nil, &empty); string(w) != "\x01" || !Decode(string(w), &empty) {
		t.Errorf("empty fields encode to %q", w)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"other version": string([]byte{2, Model, 1, 'x'}),
	} {
		var s Fields
		if Decode(in, &s) {
			t.Errorf("%s: Decode(%q) accepted it: %q", name, in, s)
		}
	}
	for name, in := range map[string]string{
		"unknown slot":     string([]byte{byte(NumFields), 1, 'x'}),
		"length past end":  string([]byte{Model, 5, 'x'}),
		"missing length":   string([]byte{Model}),
		"empty value":      string([]byte{Model, 0}),
		"slot twice":       string([]byte{Model, 1, 'a', Model, 1, 'b'}),
		"unended varint":   string([]byte{Model, 0x80}),
		"overlong varint":  string([]byte{Model, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}),
		"huge length":      string([]byte{Model, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'}),
		"trailing garbage": string([]byte{Model, 1, 'a', 200}),
	} {
		var s Fields
		if Decode("\x01"+in, &s) {
			t.Errorf("%s: Decode(%q) accepted it: %q", name, in, s)
		}
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to
// the same bytes when the slots came in ascending order (Append's order).
func FuzzDecode(f *testing.F) {
	for _, ev := range events {
		var s Fields
		s.Scan(ev)
		f.Add(Append(nil, &s))
	}
	f.Add([]byte{1, Model, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Fields
		if !Decode(string(b), &s) {
			return
		}
		if ascending(b) && string(Append(nil, &s)) != string(b) {
			t.Fatalf("Append(Decode(%q)) = %q", b, Append(nil, &s))
		}
	})
}

// ascending reports whether the slots of a valid encoding are in
// ascending order and each length is minimally encoded.
func ascending(b []byte) bool {
	b = b[1:]
	last := -1
	for len(b) > 0 {
		f := int(b[0])
		if f <= last {
			return false
		}
		last = f
		n, k := uvarint(string(b[1:]))
		if k > 1 && b[k] == 0 { // a non-minimal varint ends in a zero byte
			return false
		}
		b = b[1+k+int(n):]
	}
	return true
}

// FuzzScanRoundTrip: whatever Scan keeps of any input survives Append and
// Decode unchanged, as the host's answer to a guest must.
func FuzzScanRoundTrip(f *testing.F) {
	for _, ev := range events {
		f.Add(ev)
	}
	f.Fuzz(func(t *testing.T, ev string) {
		var s, got Fields
		s.Scan(ev)
		if !Decode(string(Append(nil, &s)), &got) || got != s {
			t.Fatalf("round trip of %q:\n got %q\nwant %q", ev, got, s)
		}
	})
}
