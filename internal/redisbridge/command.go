package redisbridge

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// parseCommand checks that b is exactly one RESP array of one or more bulk
// strings, the only form Redis clients (and wasm-go) send commands in, and
// returns the elements. They alias b. Anything else is an error wrapping
// ErrBadArgument: inline commands, an empty or nil array, other element
// types, a nil bulk string, a length that does not match the data, and
// trailing bytes (one command per call; a pipeline would get one reply
// back for several commands).
//
// Numbers must be canonical decimal (no sign, no leading zero), so an
// accepted command re-encodes to exactly b.
func parseCommand(b []byte) ([][]byte, error) {
	n, rest, err := readLength(b, '*', "command")
	if err != nil {
		return nil, err
	}
	switch {
	case n < 0:
		return nil, badCommand("a nil array is not a command")
	case n == 0:
		return nil, badCommand("an empty array is not a command")
	case n > len(rest)/len("$0\r\n\r\n"):
		// Checked before allocating: a bulk string takes at least 6 bytes.
		return nil, badCommand("array declares %d elements, but only %d bytes follow", n, len(rest))
	}
	args := make([][]byte, 0, n)
	for i := range n {
		var size int
		size, rest, err = readLength(rest, '$', "element "+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		if size < 0 {
			return nil, badCommand("element %d is a nil bulk string", i)
		}
		if len(rest) < size+2 {
			return nil, badCommand("element %d declares %d bytes, but only %d follow", i, size, len(rest))
		}
		if rest[size] != '\r' || rest[size+1] != '\n' {
			return nil, badCommand("element %d: %d bytes of data are not followed by CRLF", i, size)
		}
		args = append(args, rest[:size:size])
		rest = rest[size+2:]
	}
	if len(rest) > 0 {
		return nil, badCommand("%d bytes follow the command (send one command per call)", len(rest))
	}
	return args, nil
}

// readLength reads a "<typ><n>\r\n" header and returns n (-1 for a nil
// header) and what follows it. what names the value for errors.
func readLength(b []byte, typ byte, what string) (int, []byte, error) {
	if len(b) == 0 {
		return 0, nil, badCommand("%s: input ends where a %s header should start", what, typeName(typ))
	}
	if b[0] != typ {
		return 0, nil, badCommand("%s: want %s (%q), got %q", what, typeName(typ), typ, b[0])
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return 0, nil, badCommand("%s: header is not terminated by CRLF", what)
	}
	digits := b[1:end]
	if string(digits) == "-1" {
		return -1, b[end+2:], nil
	}
	// At most 10 digits: no length beyond 9,999,999,999 can match the input
	// anyway, and it keeps the conversion below from overflowing.
	if len(digits) == 0 || len(digits) > 10 || (digits[0] == '0' && len(digits) > 1) {
		return 0, nil, badCommand("%s: length %q is not a canonical decimal number", what, digits)
	}
	n := 0
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, nil, badCommand("%s: length %q is not a canonical decimal number", what, digits)
		}
		n = n*10 + int(d-'0')
	}
	return n, b[end+2:], nil
}

func typeName(typ byte) string {
	if typ == '*' {
		return "an array"
	}
	return "a bulk string"
}

func badCommand(format string, args ...any) error {
	return fmt.Errorf("%w: malformed RESP command: %s", ErrBadArgument, fmt.Sprintf(format, args...))
}

// appendError appends a RESP error reply carrying msg. CR and LF, which
// would end the reply early, become spaces.
func appendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	for i := range len(msg) {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// stateCommands change the state of the connection they run on. Sluice
// pools connections and shares them between calls and plugins, so the
// state would leak into other calls (SELECT, AUTH, HELLO, CLIENT REPLY) or
// be lost between calls (MULTI … EXEC, WATCH, SUBSCRIBE). Such commands get
// an error reply instead of being sent.
var stateCommands = map[string]string{
	"select":       "select a database with ?db=N on the cluster name",
	"auth":         "pass credentials to proxy_redis_init",
	"hello":        "the bridge speaks RESP2",
	"quit":         "",
	"reset":        "",
	"multi":        "use EVAL for atomic sequences",
	"exec":         "use EVAL for atomic sequences",
	"discard":      "use EVAL for atomic sequences",
	"watch":        "use EVAL for atomic sequences",
	"unwatch":      "use EVAL for atomic sequences",
	"subscribe":    "",
	"psubscribe":   "",
	"ssubscribe":   "",
	"unsubscribe":  "",
	"punsubscribe": "",
	"sunsubscribe": "",
	"monitor":      "",
	"sync":         "",
	"psync":        "",
}

// stateClientSubcommands are the CLIENT subcommands that change the
// connection's state.
var stateClientSubcommands = map[string]bool{"reply": true, "tracking": true}

// refuseReply returns the error reply for a command that must not run on a
// shared connection, or nil when args may be sent.
func refuseReply(args [][]byte) []byte {
	name := strings.ToLower(string(args[0]))
	hint, refused := stateCommands[name]
	if name == "client" && len(args) > 1 {
		sub := strings.ToLower(string(args[1]))
		if stateClientSubcommands[sub] {
			refused, name = true, name+" "+sub
		}
	}
	if !refused {
		return nil
	}
	msg := "ERR '" + name + "' changes connection state and is not allowed through proxy_redis_call (Sluice shares pooled connections)"
	if hint != "" {
		msg += "; " + hint
	}
	return appendError(nil, msg)
}
