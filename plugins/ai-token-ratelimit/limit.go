package main

import (
	"net/netip"
	"net/url"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// This file picks the limit a request falls under: the global threshold,
// or the first rule item whose value the request carries and whose
// limit_keys match it; and names the Redis key of that limit's window.

// keyPrefix starts every Redis key; it is Higress's, so a Redis shared
// with Higress gateways counts the same windows.
const keyPrefix = "higress-token-ratelimit:"

// target is one limit's window in Redis: the constant start of its key
// and, encoded once as RESP bulk strings, the scripts' first two
// arguments (the limit and the window's seconds). Built at configure
// time; a request adds only its value to the key.
type target struct {
	keyPrefix string
	limit
	args []byte
}

func newTarget(keyPrefix string, l limit) *target {
	args := pdk.AppendRedisBulkInt(nil, l.count)
	return &target{keyPrefix: keyPrefix, limit: l, args: pdk.AppendRedisBulkInt(args, l.seconds)}
}

// bucket is the window a request is counted in: its key is the target's
// prefix followed by value.
type bucket struct {
	*target
	value string
}

// key returns the window's Redis key.
func (b bucket) key() string { return b.keyPrefix + b.value }

// command encodes script run on the bucket's window: EVAL script 1 key
// limit seconds, then tokens when charge is true.
func (b bucket) command(script *pdk.RedisScript, charge bool, tokens int64) []byte {
	n := 3
	if charge {
		n = 4
	}
	cmd := make([]byte, 0, script.EncodedLen()+len(b.keyPrefix)+len(b.value)+len(b.args)+48)
	cmd = script.AppendEval(cmd, n)
	cmd = pdk.AppendRedisBulkString(cmd, b.keyPrefix, b.value)
	cmd = append(cmd, b.args...)
	if charge {
		cmd = pdk.AppendRedisBulkInt(cmd, tokens)
	}
	return cmd
}

// request is what the limit lookup reads from a request (an interface so
// the lookup is tested without a host).
type request interface {
	header(name string) (string, bool)
	path() string
	remoteAddress() string
}

// lookup returns the request's bucket; ok is false when no limit applies.
func (c *config) lookup(r request) (b bucket, ok bool) {
	if c.global != nil {
		return bucket{target: c.global}, true
	}
	for i := range c.items {
		it := &c.items[i]
		value, found := it.value(r)
		if !found {
			continue
		}
		m, matched := it.match(value)
		if !matched {
			continue
		}
		return bucket{target: m.target, value: value}, true
	}
	return bucket{}, false
}

// value extracts the item's value from the request; found is false when
// the request does not carry it (the item is then skipped).
func (it *item) value(r request) (string, bool) {
	switch it.typ {
	case byHeader, byPerHeader:
		return r.header(it.name)
	case byConsumer, byPerConsumer:
		return r.header(consumerHeader)
	case byParam, byPerParam:
		return queryParam(r.path(), it.name)
	case byCookie, byPerCookie:
		v, _ := r.header("cookie")
		v = cookieValue(v, it.name)
		return v, v != ""
	case byPerIP:
		var raw string
		if it.ipHeader != "" {
			h, ok := r.header(it.ipHeader)
			if !ok {
				return "", false
			}
			raw, _, _ = strings.Cut(strings.TrimSpace(h), ",")
		} else {
			raw = r.remoteAddress()
		}
		a, ok := parseClientIP(raw)
		if !ok {
			return "", false
		}
		return a.String(), true
	}
	return "", false
}

// match returns the first limit_keys entry matching value.
func (it *item) match(value string) (*matcher, bool) {
	if it.typ == byPerIP {
		a, err := netip.ParseAddr(value)
		if err != nil {
			return nil, false
		}
		for i := range it.keys {
			if m := &it.keys[i]; m.prefix.Contains(a) {
				return m, true
			}
		}
		return nil, false
	}
	for i := range it.keys {
		m := &it.keys[i]
		switch {
		case m.any, m.re != nil && m.re.MatchString(value):
			return m, true
		case !it.perValue && m.text == value:
			return m, true
		}
	}
	return nil, false
}

// queryParam returns the first value of name in the query of path; found
// is false when the query does not have it.
func queryParam(path, name string) (string, bool) {
	_, q, ok := strings.Cut(path, "?")
	if !ok {
		return "", false
	}
	q, _, _ = strings.Cut(q, "#")
	values, _ := url.ParseQuery(q) // keeps the pairs that parse
	v, found := values[name]
	if !found || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// cookieValue returns the value of the first cookie called name in a
// Cookie header ("" when absent). The value runs to the end of the pair,
// so values containing '=' are kept whole; a pair without '=' has an
// empty value.
func cookieValue(header, name string) string {
	for pair := range strings.SplitSeq(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
		if strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parseClientIP reads "1.2.3.4", "1.2.3.4:5678", "::1" or "[::1]:5678".
func parseClientIP(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
