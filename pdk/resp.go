package pdk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file is RESP2, the Redis wire format: commands are encoded as
// arrays of bulk strings and replies are parsed into RedisValue. It is
// written here rather than imported because the host relays RESP2 only
// (internal/redisbridge speaks protocol 2 to servers) and the kit needs
// ~150 lines of it; the usual library (tidwall/resp) is unmaintained and
// would expose its types in the kit's API.

// RedisKind is the type of a RESP value.
type RedisKind byte

// RESP2 value kinds, named by their type byte.
const (
	RedisSimpleString RedisKind = '+'
	RedisError        RedisKind = '-'
	RedisInteger      RedisKind = ':'
	RedisBulkString   RedisKind = '$'
	RedisArray        RedisKind = '*'
)

// RedisValue is a parsed Redis reply. Null bulk strings and null arrays
// have IsNull true.
type RedisValue struct {
	kind  RedisKind
	str   string
	num   int64
	array []RedisValue
	null  bool
}

// RedisErrorValue is an error reply with message msg; the Redis client
// hands callbacks such values for failures on the way (no connection,
// unreadable reply).
func RedisErrorValue(msg string) RedisValue { return RedisValue{kind: RedisError, str: msg} }

// Kind returns the value's RESP type.
func (v RedisValue) Kind() RedisKind { return v.kind }

// IsError reports whether v is an error reply.
func (v RedisValue) IsError() bool { return v.kind == RedisError }

// Err returns the error of an error reply, nil otherwise.
func (v RedisValue) Err() error {
	if v.kind != RedisError {
		return nil
	}
	return errors.New(v.str)
}

// IsNull reports whether v is a null bulk string or null array (GET of a
// missing key).
func (v RedisValue) IsNull() bool { return v.null }

// String returns the text of a simple string, bulk string or error, the
// decimal text of an integer, "" for null and arrays.
func (v RedisValue) String() string {
	if v.kind == RedisInteger {
		return strconv.FormatInt(v.num, 10)
	}
	return v.str
}

// Int returns an integer reply, or a string reply parsed as an integer.
func (v RedisValue) Int() (int64, error) {
	switch v.kind {
	case RedisInteger:
		return v.num, nil
	case RedisSimpleString, RedisBulkString:
		if v.null {
			return 0, errors.New("redis: null reply")
		}
		return strconv.ParseInt(v.str, 10, 64)
	case RedisError:
		return 0, v.Err()
	}
	return 0, fmt.Errorf("redis: %c reply is not an integer", v.kind)
}

// Array returns the elements of an array reply (nil otherwise).
func (v RedisValue) Array() []RedisValue { return v.array }

// EncodeRedisCommand encodes a command as a RESP array of bulk strings,
// every argument formatted with fmt.Sprint (as wasm-go does; strings,
// byte slices, integers and booleans are formatted without fmt, with the
// same text).
func EncodeRedisCommand(args ...any) []byte {
	size := 16
	for _, a := range args {
		switch a := a.(type) {
		case string:
			size += len(a) + 16
		case []byte:
			size += len(a) + 16
		default:
			size += 32
		}
	}
	b := AppendRedisArrayHeader(make([]byte, 0, size), len(args))
	for _, a := range args {
		switch a := a.(type) {
		case string:
			b = AppendRedisBulkString(b, a)
		case []byte:
			b = appendBulkBytes(b, a)
		case int:
			b = AppendRedisBulkInt(b, int64(a))
		case int64:
			b = AppendRedisBulkInt(b, a)
		case int32:
			b = AppendRedisBulkInt(b, int64(a))
		case uint32:
			b = AppendRedisBulkInt(b, int64(a))
		case bool:
			b = AppendRedisBulkString(b, strconv.FormatBool(a))
		default:
			b = AppendRedisBulkString(b, fmt.Sprint(a))
		}
	}
	return b
}

// AppendRedisArrayHeader appends the header of a RESP array of n elements
// ("*<n>\r\n"); a command is such a header followed by n bulk strings.
// With AppendRedisBulkString, AppendRedisBulkInt and RedisScript it builds
// commands for RedisClient.Send without formatting or boxing: encode the
// constant parts once, at configure time, and append only what varies per
// request.
func AppendRedisArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendRedisBulkString appends one bulk string whose content is parts
// concatenated, so a key such as prefix+name needs no string of its own.
func AppendRedisBulkString(b []byte, parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '\r', '\n')
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(b, '\r', '\n')
}

// AppendRedisBulkInt appends n as a bulk string of its decimal text (Redis
// commands take numbers as strings).
func AppendRedisBulkInt(b []byte, n int64) []byte {
	var digits [20]byte
	return appendBulkBytes(b, strconv.AppendInt(digits[:0], n, 10))
}

func appendBulkBytes(b, data []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, '\r', '\n')
	b = append(b, data...)
	return append(b, '\r', '\n')
}

// maxRESPDepth bounds nested arrays so a hostile reply cannot exhaust the
// stack.
const maxRESPDepth = 64

// ParseRedisReply parses one RESP2 value from b. Trailing bytes are an
// error.
func ParseRedisReply(b []byte) (RedisValue, error) {
	return parseRedisReply(string(b))
}

// parseRedisReply parses one RESP2 value from s; the strings of the value
// are substrings of s.
func parseRedisReply(s string) (RedisValue, error) {
	v, n, err := parseRESP(s, 0)
	if err != nil {
		return RedisValue{}, err
	}
	if n != len(s) {
		return RedisValue{}, fmt.Errorf("redis reply: %d unexpected bytes after the value", len(s)-n)
	}
	return v, nil
}

func parseRESP(b string, depth int) (RedisValue, int, error) {
	if depth > maxRESPDepth {
		return RedisValue{}, 0, errors.New("redis reply: arrays nested too deeply")
	}
	if len(b) == 0 {
		return RedisValue{}, 0, errors.New("redis reply: empty")
	}
	end := strings.Index(b, "\r\n")
	if end < 0 {
		return RedisValue{}, 0, errors.New("redis reply: line without CRLF")
	}
	if end == 0 {
		return RedisValue{}, 0, errors.New("redis reply: line without a type byte")
	}
	kind, line, n := RedisKind(b[0]), b[1:end], end+2
	switch kind {
	case RedisSimpleString, RedisError:
		return RedisValue{kind: kind, str: line}, n, nil
	case RedisInteger:
		i, ok := parseDecimal(line)
		if !ok {
			var err error
			if i, err = strconv.ParseInt(line, 10, 64); err != nil {
				return RedisValue{}, 0, fmt.Errorf("redis reply: bad integer %q", line)
			}
		}
		return RedisValue{kind: kind, num: i}, n, nil
	case RedisBulkString:
		l, err := parseLength(line)
		if err != nil || l < -1 {
			return RedisValue{}, 0, fmt.Errorf("redis reply: bad bulk length %q", line)
		}
		if l == -1 {
			return RedisValue{kind: kind, null: true}, n, nil
		}
		if len(b)-n < l+2 || b[n+l] != '\r' || b[n+l+1] != '\n' {
			return RedisValue{}, 0, errors.New("redis reply: bulk string shorter than its length")
		}
		return RedisValue{kind: kind, str: b[n : n+l]}, n + l + 2, nil
	case RedisArray:
		l, err := parseLength(line)
		if err != nil || l < -1 {
			return RedisValue{}, 0, fmt.Errorf("redis reply: bad array length %q", line)
		}
		if l == -1 {
			return RedisValue{kind: kind, null: true}, n, nil
		}
		if l > len(b) { // every element takes at least 3 bytes
			return RedisValue{}, 0, errors.New("redis reply: array longer than the reply")
		}
		arr := make([]RedisValue, 0, l)
		for i := 0; i < l; i++ {
			e, m, err := parseRESP(b[n:], depth+1)
			if err != nil {
				return RedisValue{}, 0, err
			}
			arr = append(arr, e)
			n += m
		}
		return RedisValue{kind: kind, array: arr}, n, nil
	}
	return RedisValue{}, 0, fmt.Errorf("redis reply: unknown type byte %q", b[0])
}

// parseLength reads a bulk or array length as strconv.Atoi does.
func parseLength(s string) (int, error) {
	if i, ok := parseDecimal(s); ok {
		return int(i), nil
	}
	return strconv.Atoi(s)
}

// parseDecimal reads the common case, an optional '-' and 1 to 18 ASCII
// digits, without strconv's generality; ok is false for anything else
// (the caller then falls back to strconv, which gives the same result or
// the error).
func parseDecimal(s string) (n int64, ok bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
