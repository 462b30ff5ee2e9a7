package redisbridge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string // substring; "" means success
	}{
		{name: "one element", in: "*1\r\n$4\r\nPING\r\n", want: []string{"PING"}},
		{name: "several elements", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", want: []string{"SET", "k", "hello"}},
		{name: "empty bulk string", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", want: []string{"SET", "k", ""}},
		{name: "binary-safe value", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8\r\na\r\nb\x00c\r\n\r\n", want: []string{"SET", "k", "a\r\nb\x00c\r\n"}},
		{name: "value that looks like RESP", in: "*2\r\n$4\r\nECHO\r\n$9\r\n*1\r\n$-1\r\n\r\n", want: []string{"ECHO", "*1\r\n$-1\r\n"}},
		{name: "ten elements", in: string(command("DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i")), want: []string{"DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i"}},

		{name: "empty input", in: "", wantErr: "input ends"},
		{name: "inline command", in: "PING\r\n", wantErr: "want an array"},
		{name: "simple string", in: "+OK\r\n", wantErr: "want an array"},
		{name: "bare bulk string", in: "$4\r\nPING\r\n", wantErr: "want an array"},
		{name: "empty array", in: "*0\r\n", wantErr: "empty array"},
		{name: "nil array", in: "*-1\r\n", wantErr: "nil array"},
		{name: "negative count", in: "*-2\r\n", wantErr: "canonical decimal"},
		{name: "leading zero", in: "*01\r\n$4\r\nPING\r\n", wantErr: "canonical decimal"},
		{name: "plus sign", in: "*+1\r\n$4\r\nPING\r\n", wantErr: "canonical decimal"},
		{name: "no digits", in: "*\r\n", wantErr: "canonical decimal"},
		{name: "huge count", in: "*99999999999\r\n", wantErr: "canonical decimal"},
		{name: "header without CRLF", in: "*1\n$4\nPING\n", wantErr: "not terminated by CRLF"},
		{name: "count beyond data", in: "*3\r\n$4\r\nPING\r\n", wantErr: "declares 3 elements"},
		{name: "integer element", in: "*2\r\n$4\r\nINCR\r\n:1\r\n", wantErr: "element 1: want a bulk string"},
		{name: "simple string element", in: "*2\r\n$3\r\nGET\r\n+k\r\n", wantErr: "element 1: want a bulk string"},
		{name: "nested array", in: "*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n", wantErr: "element 1: want a bulk string"},
		{name: "nil bulk element", in: "*2\r\n$3\r\nGET\r\n$-1\r\n", wantErr: "element 1 is a nil bulk string"},
		{name: "short bulk", in: "*1\r\n$10\r\nPING\r\n", wantErr: "declares 10 bytes"},
		{name: "long bulk", in: "*1\r\n$2\r\nPING\r\n", wantErr: "not followed by CRLF"},
		{name: "bulk without trailing CRLF", in: "*1\r\n$4\r\nPING", wantErr: "declares 4 bytes"},
		{name: "trailing bytes", in: "*1\r\n$4\r\nPING\r\n\r\n", wantErr: "2 bytes follow"},
		{name: "two commands", in: "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", wantErr: "send one command per call"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCommand([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBadArgument) {
					t.Fatalf("parseCommand(%q) = %q, %v; want an ErrBadArgument containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCommand(%q): %v", tc.in, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("parseCommand(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Fatalf("parseCommand(%q)[%d] = %q, want %q", tc.in, i, got[i], tc.want[i])
				}
			}
			if back := appendCommand(nil, got...); string(back) != tc.in {
				t.Fatalf("re-encoded %q, want %q", back, tc.in)
			}
		})
	}
}

// FuzzParseCommand checks the hostcall boundary: any input is either
// rejected with ErrBadArgument or is exactly the encoding of what was
// parsed, so the bytes the server receives are the bytes the guest sent.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\n\r\n",
		"*0\r\n", "*-1\r\n", "$-1\r\n", "*2\r\n$3\r\nGET\r\n", "*1\r\n$0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		args, err := parseCommand(in)
		if err != nil {
			if !errors.Is(err, ErrBadArgument) {
				t.Fatalf("error %v does not wrap ErrBadArgument", err)
			}
			return
		}
		if len(args) == 0 {
			t.Fatal("accepted a command without elements")
		}
		if back := appendCommand(nil, args...); !bytes.Equal(back, in) {
			t.Fatalf("accepted %q but it re-encodes to %q", in, back)
		}
	})
}

func TestAppendError(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"ERR boom", "-ERR boom\r\n"},
		{"NOAUTH Authentication required.", "-NOAUTH Authentication required.\r\n"},
		{"ERR two\r\nlines\n", "-ERR two  lines \r\n"},
		{"", "-\r\n"},
	}
	for _, tc := range tests {
		if got := appendError(nil, tc.msg); string(got) != tc.want {
			t.Errorf("appendError(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestRefuseReply(t *testing.T) {
	tests := []struct {
		args    []string
		refused string // expected prefix of the error reply; "" means sent
	}{
		{[]string{"SELECT", "1"}, "-ERR 'select' changes connection state"},
		{[]string{"auth", "pw"}, "-ERR 'auth' changes connection state"},
		{[]string{"Multi"}, "-ERR 'multi' changes connection state"},
		{[]string{"SUBSCRIBE", "ch"}, "-ERR 'subscribe' changes connection state"},
		{[]string{"CLIENT", "REPLY", "OFF"}, "-ERR 'client reply' changes connection state"},
		{[]string{"client", "tracking", "on"}, "-ERR 'client tracking' changes connection state"},
		{[]string{"CLIENT", "ID"}, ""},
		{[]string{"CLIENT"}, ""},
		{[]string{"GET", "select"}, ""},
		{[]string{"EVAL", "return 1", "0"}, ""},
	}
	for _, tc := range tests {
		parts := make([][]byte, len(tc.args))
		for i, a := range tc.args {
			parts[i] = []byte(a)
		}
		got := refuseReply(parts)
		switch {
		case tc.refused == "" && got != nil:
			t.Errorf("%q refused with %q, want it sent", tc.args, got)
		case tc.refused != "" && !strings.HasPrefix(string(got), tc.refused):
			t.Errorf("%q: reply %q, want prefix %q", tc.args, got, tc.refused)
		case tc.refused != "" && !strings.HasSuffix(string(got), "\r\n"):
			t.Errorf("%q: reply %q is not CRLF-terminated", tc.args, got)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    target
		wantErr bool
	}{
		{in: "redis", want: target{base: "redis"}},
		{in: "outbound|6379||redis.static", want: target{base: "outbound|6379||redis.static"}},
		{in: "outbound|6379||redis.static?db=2&buffer_flush_timeout=0", want: target{base: "outbound|6379||redis.static", db: 2, hasDB: true}},
		{in: "r?buffer_flush_timeout=3&max_buffer_size_before_flush=1024", want: target{base: "r"}},
		{in: "r?db=0", want: target{base: "r", hasDB: true}},
		{in: "r?unknown=1&db=5", want: target{base: "r", db: 5, hasDB: true}},
		{in: "r?", want: target{base: "r"}},
		{in: "r?db=x", wantErr: true},
		{in: "r?db=-1", wantErr: true},
		{in: "r?db=%zz", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseTarget(tc.in)
		if tc.wantErr {
			if !errors.Is(err, ErrBadArgument) {
				t.Errorf("parseTarget(%q) = %+v, %v; want ErrBadArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
