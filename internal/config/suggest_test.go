package config

import "testing"

func TestClosest(t *testing.T) {
	fields := []string{"listeners", "timeouts", "limits", "admin", "accessLog", "tracing", "shutdownTimeout"}
	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{"lisetners", fields, "listeners"},
		{"accesslog", fields, "accessLog"},
		{"timeout", fields, "timeouts"},
		{"colour", fields, ""},
		{"x", fields, ""},
		{"", fields, ""},
		{"adress", []string{"name", "address", "tls", "http2"}, "address"},
		{"fail_open", []string{"FAIL_CLOSE", "FAIL_OPEN"}, "FAIL_OPEN"},
		{"anything", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			if got := closest(tt.word, tt.candidates); got != tt.want {
				t.Errorf("closest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"adress", "address", 1}, {"héllo", "hello", 1},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
