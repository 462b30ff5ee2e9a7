package llmcore

import "testing"

func TestCountTokens(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"spaces only", " \t\n ", 0},
		{"one word", "hello", 1},
		{"words and punctuation", "Echo: hello, world!", 6},
		{"digits join letters", "gpt4o mini", 2},
		{"apostrophe splits", "what's", 3},
		{"json", `{"city":"Paris"}`, 9},
		{"unicode letters", "naïve café", 2},
		{"combining mark stays in word", "cafe\u0301 ok", 2},
		{"cjk run is one word", "你好 世界", 2},
		{"symbols each count", "a+b=c", 5},
		{"unicode space separates", "a\u00a0b", 2},
		{"invalid utf8 counts as symbol", "a\xffb", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CountTokens(tc.in); got != tc.want {
				t.Errorf("CountTokens(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestCutTokens(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int
		want    string
		wantCut bool
	}{
		{"zero", "a b", 0, "", true},
		{"zero of empty", "", 0, "", false},
		{"fewer than n", "a b", 5, "a b", false},
		{"exactly n", "a b", 2, "a b", false},
		{"cut keeps trailing space for caller to trim", "a b c", 2, "a b ", true},
		{"punctuation is a token", "Echo: hi", 2, "Echo: ", true},
		{"multibyte", "été à Paris", 2, "été à ", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := CutTokens(tc.in, tc.n)
			if got != tc.want || cut != tc.wantCut {
				t.Errorf("CutTokens(%q, %d) = %q, %v; want %q, %v", tc.in, tc.n, got, cut, tc.want, tc.wantCut)
			}
			if cut && CountTokens(got) != tc.n {
				t.Errorf("cut text %q has %d tokens, want %d", got, CountTokens(got), tc.n)
			}
		})
	}
}
