package pdk_test

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

func TestParseRedisReply(t *testing.T) {
	cases := []struct {
		name, in string
		check    func(v pdk.RedisValue) bool
		err      string
	}{
		{"simple string", "+OK\r\n", func(v pdk.RedisValue) bool { return v.Kind() == pdk.RedisSimpleString && v.String() == "OK" }, ""},
		{"error", "-ERR x\r\n", func(v pdk.RedisValue) bool { return v.IsError() && v.Err().Error() == "ERR x" }, ""},
		{"integer", ":-12\r\n", func(v pdk.RedisValue) bool { n, err := v.Int(); return n == -12 && err == nil && v.String() == "-12" }, ""},
		{"bulk string with CRLF inside", "$4\r\na\r\nb\r\n", func(v pdk.RedisValue) bool { return v.String() == "a\r\nb" }, ""},
		{"empty bulk string", "$0\r\n\r\n", func(v pdk.RedisValue) bool { return v.String() == "" && !v.IsNull() }, ""},
		{"null bulk string", "$-1\r\n", func(v pdk.RedisValue) bool { return v.IsNull() }, ""},
		{"bulk string as integer", "$2\r\n42\r\n", func(v pdk.RedisValue) bool { n, err := v.Int(); return n == 42 && err == nil }, ""},
		{"null array", "*-1\r\n", func(v pdk.RedisValue) bool { return v.IsNull() && v.Kind() == pdk.RedisArray }, ""},
		{"nested array", "*2\r\n:1\r\n*1\r\n$1\r\nx\r\n", func(v pdk.RedisValue) bool {
			a := v.Array()
			return len(a) == 2 && a[0].String() == "1" && a[1].Array()[0].String() == "x"
		}, ""},
		{"empty", "", nil, "redis reply: empty"},
		{"no CRLF", "+OK", nil, "redis reply: line without CRLF"},
		{"short bulk", "$5\r\nab\r\n", nil, "redis reply: bulk string shorter than its length"},
		{"bad integer", ":x\r\n", nil, `redis reply: bad integer "x"`},
		{"unknown type", "%1\r\n", nil, `redis reply: unknown type byte '%'`},
		{"trailing bytes", ":1\r\n:2\r\n", nil, "redis reply: 4 unexpected bytes after the value"},
		{"array longer than the reply", "*1000\r\n:1\r\n", nil, "redis reply: array longer than the reply"},
		{"deep nesting", strings.Repeat("*1\r\n", 100) + ":1\r\n", nil, "redis reply: arrays nested too deeply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := pdk.ParseRedisReply([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(v) {
				t.Errorf("parsed %+v, %v", v, err)
			}
		})
	}
}

func TestEncodeRedisCommand(t *testing.T) {
	got := string(pdk.EncodeRedisCommand("SET", "k", 12, []byte("b"), 1.5))
	want := "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$1\r\nb\r\n$3\r\n1.5\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestAppendRedisCommand: commands built with the append functions and
// RedisScript are byte for byte what EncodeRedisCommand (fmt.Sprint of
// every argument) makes of the same arguments.
func TestAppendRedisCommand(t *testing.T) {
	script := "return redis.call('INCRBY', KEYS[1], ARGV[1])"
	cases := []struct {
		name      string
		got, want []byte
	}{
		{"GET of a key in two parts",
			pdk.AppendRedisBulkString(pdk.AppendRedisBulkString(pdk.AppendRedisArrayHeader(nil, 2), "GET"), "chat_quota:", "alice"),
			pdk.EncodeRedisCommand("GET", "chat_quota:alice")},
		{"integers, negative and empty strings",
			pdk.AppendRedisBulkString(pdk.AppendRedisBulkInt(pdk.AppendRedisBulkInt(pdk.AppendRedisArrayHeader(nil, 3), -9223372036854775808), 0)),
			pdk.EncodeRedisCommand(int64(-9223372036854775808), 0, "")},
		{"script",
			pdk.AppendRedisBulkInt(pdk.AppendRedisBulkString(pdk.NewRedisScript(script, 1).AppendEval(nil, 2), "k"), 5),
			pdk.EncodeRedisCommand("EVAL", script, 1, "k", 5)},
		{"fast paths format as fmt.Sprint",
			pdk.EncodeRedisCommand(int32(-3), uint32(4), true, false, 2.5, uint64(7)),
			[]byte("*6\r\n$2\r\n-3\r\n$1\r\n4\r\n$4\r\ntrue\r\n$5\r\nfalse\r\n$3\r\n2.5\r\n$1\r\n7\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != string(tc.want) {
				t.Errorf("got  %q\nwant %q", tc.got, tc.want)
			}
		})
	}
	if s := pdk.NewRedisScript(script, 1); s.Source() != script || s.EncodedLen() < len(s.AppendEval(nil, 99)) {
		t.Errorf("script %q encodes %d bytes, EncodedLen %d", s.Source(), len(s.AppendEval(nil, 99)), s.EncodedLen())
	}
}

// TestParseRedisReplyNumbers: the parser's fast path for lengths and
// integers agrees with strconv, including the forms it hands to strconv.
func TestParseRedisReplyNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{":0\r\n", 0}, {":-0\r\n", 0}, {":+5\r\n", 5}, {":007\r\n", 7},
		{":9223372036854775807\r\n", 9223372036854775807}, {":-9223372036854775808\r\n", -9223372036854775808},
		{"$2\r\n42\r\n", 42}, {"$+2\r\n42\r\n", 42},
	} {
		v, err := pdk.ParseRedisReply([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if n, err := v.Int(); err != nil || n != tc.want {
			t.Errorf("%q: %d, %v, want %d", tc.in, n, err, tc.want)
		}
	}
	for _, in := range []string{":9223372036854775808\r\n", ":-\r\n", ":\r\n", "$-2\r\n", "*x\r\n"} {
		if _, err := pdk.ParseRedisReply([]byte(in)); err == nil {
			t.Errorf("%q parsed, want an error", in)
		}
	}
}

// FuzzParseRedisReply: no input panics, and a parsed command round-trips.
func FuzzParseRedisReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "*2\r\n$1\r\na\r\n:1\r\n", "$-1\r\n", "-ERR\r\n", "*1\r\n*1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := pdk.ParseRedisReply(b)
		if err != nil || v.Kind() != pdk.RedisArray || v.IsNull() {
			return
		}
		args := make([]any, 0, len(v.Array()))
		for _, e := range v.Array() {
			if e.Kind() != pdk.RedisBulkString || e.IsNull() {
				return
			}
			args = append(args, e.String())
		}
		again, err := pdk.ParseRedisReply(pdk.EncodeRedisCommand(args...))
		if err != nil || len(again.Array()) != len(args) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}
