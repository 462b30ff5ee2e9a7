package pdk

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
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
// every argument formatted with fmt.Sprint (as wasm-go does).
func EncodeRedisCommand(args ...any) []byte {
	var b bytes.Buffer
	b.WriteByte('*')
	b.WriteString(strconv.Itoa(len(args)))
	b.WriteString("\r\n")
	for _, a := range args {
		var s string
		switch a := a.(type) {
		case string:
			s = a
		case []byte:
			s = string(a)
		default:
			s = fmt.Sprint(a)
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteString("\r\n")
		b.WriteString(s)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// maxRESPDepth bounds nested arrays so a hostile reply cannot exhaust the
// stack.
const maxRESPDepth = 64

// ParseRedisReply parses one RESP2 value from b. Trailing bytes are an
// error.
func ParseRedisReply(b []byte) (RedisValue, error) {
	v, n, err := parseRESP(b, 0)
	if err != nil {
		return RedisValue{}, err
	}
	if n != len(b) {
		return RedisValue{}, fmt.Errorf("redis reply: %d unexpected bytes after the value", len(b)-n)
	}
	return v, nil
}

func parseRESP(b []byte, depth int) (RedisValue, int, error) {
	if depth > maxRESPDepth {
		return RedisValue{}, 0, errors.New("redis reply: arrays nested too deeply")
	}
	if len(b) == 0 {
		return RedisValue{}, 0, errors.New("redis reply: empty")
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return RedisValue{}, 0, errors.New("redis reply: line without CRLF")
	}
	if end == 0 {
		return RedisValue{}, 0, errors.New("redis reply: line without a type byte")
	}
	kind, line, n := RedisKind(b[0]), string(b[1:end]), end+2
	switch kind {
	case RedisSimpleString, RedisError:
		return RedisValue{kind: kind, str: line}, n, nil
	case RedisInteger:
		i, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return RedisValue{}, 0, fmt.Errorf("redis reply: bad integer %q", line)
		}
		return RedisValue{kind: kind, num: i}, n, nil
	case RedisBulkString:
		l, err := strconv.Atoi(line)
		if err != nil || l < -1 {
			return RedisValue{}, 0, fmt.Errorf("redis reply: bad bulk length %q", line)
		}
		if l == -1 {
			return RedisValue{kind: kind, null: true}, n, nil
		}
		if len(b)-n < l+2 || b[n+l] != '\r' || b[n+l+1] != '\n' {
			return RedisValue{}, 0, errors.New("redis reply: bulk string shorter than its length")
		}
		return RedisValue{kind: kind, str: string(b[n : n+l])}, n + l + 2, nil
	case RedisArray:
		l, err := strconv.Atoi(line)
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
