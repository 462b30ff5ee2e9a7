package llmcore

import (
	"slices"
	"strings"
	"testing"
)

func TestReplyText(t *testing.T) {
	long := strings.Repeat("w ", 150)
	tests := []struct {
		name       string
		prefix     string
		msg        string
		replyWords int
		want       string
	}{
		{"echo", EchoPrefix, "Hello, world!", 0, "Echo: Hello, world!"},
		{"white space collapsed", EchoPrefix, "  a\n\tb   c ", 0, "Echo: a b c"},
		{"empty message", EchoPrefix, "   ", 0, "Echo: (empty)"},
		{"tool result", ToolResultPrefix, "22 degrees", 0, "Tool result: 22 degrees"},
		{"reply words cycles", EchoPrefix, "a b", 5, "Echo: a b a b a"},
		{"reply words cuts", EchoPrefix, "a b c d", 2, "Echo: a b"},
		{"long message limited", EchoPrefix, long, 0, "Echo: " + strings.TrimSpace(strings.Repeat("w ", MaxEchoWords))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplyText(tc.prefix, tc.msg, tc.replyWords); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		stops       []string
		maxTokens   int
		want        string
		wantFinish  Finish
		wantMatched string
	}{
		{"untouched", "Echo: a b", nil, 0, "Echo: a b", FinishDone, ""},
		{"limit not reached", "Echo: a b", nil, 4, "Echo: a b", FinishDone, ""},
		{"limit cuts and trims", "Echo: a b", nil, 3, "Echo: a", FinishLength, ""},
		{"stop sequence", "Echo: a b c", []string{"b"}, 0, "Echo: a ", FinishStopSequence, "b"},
		{"earliest stop wins", "Echo: a b c", []string{"b", " a"}, 0, "Echo:", FinishStopSequence, " a"},
		{"empty stop ignored", "Echo: a", []string{""}, 0, "Echo: a", FinishDone, ""},
		{"limit after stop", "Echo: a b c", []string{"b"}, 2, "Echo:", FinishLength, ""},
		{"stop before limit", "Echo: a b c", []string{"a"}, 10, "Echo: ", FinishStopSequence, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, finish, matched := Limit(tc.text, tc.stops, tc.maxTokens)
			if got != tc.want || finish != tc.wantFinish || matched != tc.wantMatched {
				t.Errorf("Limit = %q, %v, %q; want %q, %v, %q", got, finish, matched, tc.want, tc.wantFinish, tc.wantMatched)
			}
		})
	}
}

func TestChunks(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		words int
		want  []string
	}{
		{"empty", "", 1, nil},
		{"one word per chunk", "Echo: a b", 1, []string{"Echo:", " a", " b"}},
		{"two words per chunk", "Echo: a b", 2, []string{"Echo: a", " b"}},
		{"more words than text", "Echo: a", 9, []string{"Echo: a"}},
		{"trailing space kept", "Echo: a ", 1, []string{"Echo:", " a", " "}},
		{"zero means one", "x y", 0, []string{"x", " y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Chunks(tc.text, tc.words)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Chunks(%q, %d) = %q, want %q", tc.text, tc.words, got, tc.want)
			}
			if strings.Join(got, "") != tc.text {
				t.Errorf("chunks do not concatenate to the text")
			}
		})
	}
}

func TestFragments(t *testing.T) {
	s := `{"city":"Zürich","note":"日本語のテキスト"}`
	for size := 1; size < 20; size++ {
		frags := Fragments(s, size)
		if strings.Join(frags, "") != s {
			t.Fatalf("size %d: fragments do not concatenate", size)
		}
		for _, f := range frags {
			if !utf8Valid(f) {
				t.Fatalf("size %d: fragment %q splits a UTF-8 sequence", size, f)
			}
			if len(f) > max(size, 4) {
				t.Fatalf("size %d: fragment %q too long", size, f)
			}
		}
	}
	if Fragments("", 4) != nil {
		t.Error("empty string has fragments")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "?") == s }
