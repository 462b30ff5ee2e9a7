package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// ErrHeadersSealed is returned when a filter mutates a header map after it
// has been forwarded (Envoy answers BAD_ARGUMENT in that case).
var ErrHeadersSealed = errors.New("header map already forwarded")

// HeaderField is one header, name in lower case.
type HeaderField struct {
	Name  string
	Value string
}

// Headers is an ordered header map in Proxy-Wasm form: names are lower
// case, pseudo-headers (":method", ":path", ":authority", ":scheme",
// ":status") are part of the map, repeated headers are repeated fields.
//
// Headers is not safe for concurrent use; only the stream driver's
// goroutine touches it.
type Headers struct {
	fields []HeaderField
	// origin is the http.Header the regular fields were made from, kept
	// while none of them changed: converting back then copies it instead of
	// re-canonicalising every name. Every mutation clears it.
	origin http.Header
	sealed bool
	dirty  bool
}

// NewHeaders returns a map holding fields (names are lower-cased).
func NewHeaders(fields ...HeaderField) *Headers {
	h := &Headers{fields: make([]HeaderField, 0, len(fields))}
	for _, f := range fields {
		h.fields = append(h.fields, HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	return h
}

// Len is the number of fields.
func (h *Headers) Len() int { return len(h.fields) }

// Fields returns the fields; callers must not modify the slice.
func (h *Headers) Fields() []HeaderField { return h.fields }

// Get returns the first value of name (case-insensitive).
func (h *Headers) Get(name string) (string, bool) {
	for i := range h.fields {
		if equalFoldASCII(h.fields[i].Name, name) {
			return h.fields[i].Value, true
		}
	}
	return "", false
}

// Value returns the first value of name or "".
func (h *Headers) Value(name string) string {
	v, _ := h.Get(name)
	return v
}

// Values returns every value of name.
func (h *Headers) Values(name string) []string {
	var out []string
	for i := range h.fields {
		if equalFoldASCII(h.fields[i].Name, name) {
			out = append(out, h.fields[i].Value)
		}
	}
	return out
}

// Set replaces every value of name with value.
func (h *Headers) Set(name, value string) error {
	if h.sealed {
		return ErrHeadersSealed
	}
	name = strings.ToLower(name)
	h.dirty, h.origin = true, nil
	j := -1
	out := h.fields[:0]
	for _, f := range h.fields {
		if f.Name == name {
			if j >= 0 {
				continue
			}
			j = len(out)
			f.Value = value
		}
		out = append(out, f)
	}
	h.fields = out
	if j < 0 {
		h.fields = append(h.fields, HeaderField{Name: name, Value: value})
	}
	return nil
}

// Add appends a value.
func (h *Headers) Add(name, value string) error {
	if h.sealed {
		return ErrHeadersSealed
	}
	h.dirty, h.origin = true, nil
	h.fields = append(h.fields, HeaderField{Name: strings.ToLower(name), Value: value})
	return nil
}

// Del removes every value of name.
func (h *Headers) Del(name string) error {
	if h.sealed {
		return ErrHeadersSealed
	}
	out := h.fields[:0]
	for _, f := range h.fields {
		if !equalFoldASCII(f.Name, name) {
			out = append(out, f)
		}
	}
	if len(out) != len(h.fields) {
		h.dirty, h.origin = true, nil
	}
	clear(h.fields[len(out):])
	h.fields = out
	return nil
}

// Replace swaps the whole map for fields.
func (h *Headers) Replace(fields []HeaderField) error {
	if h.sealed {
		return ErrHeadersSealed
	}
	h.dirty, h.origin = true, nil
	h.fields = h.fields[:0]
	for _, f := range fields {
		h.fields = append(h.fields, HeaderField{Name: strings.ToLower(f.Name), Value: f.Value})
	}
	return nil
}

// Sealed reports whether the map was forwarded and is read-only now.
func (h *Headers) Sealed() bool { return h.sealed }

// Seal makes the map read-only.
func (h *Headers) Seal() { h.sealed = true }

// Dirty reports whether the map changed since the last ResetDirty.
func (h *Headers) Dirty() bool { return h.dirty }

// ResetDirty clears the change mark.
func (h *Headers) ResetDirty() { h.dirty = false }

// Clone returns an unsealed copy.
func (h *Headers) Clone() *Headers {
	return &Headers{fields: append([]HeaderField(nil), h.fields...)}
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// hopHeaders are connection-specific and never forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers, including those named by
// Connection, from h.
func removeHopHeaders(h http.Header) {
	// Decide before the Connection pass: an RFC-conforming client lists TE
	// in Connection, and "te: trailers" must survive that (as in
	// httputil.ReverseProxy).
	keepTE := headerHasToken(h, "Te", "trailers")
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		if name == "Te" && keepTE {
			h["Te"] = []string{"trailers"}
			continue
		}
		delete(h, name)
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// requestToHeaders converts a request into a Proxy-Wasm header map with
// pseudo-headers first. hdr is the already-cleaned header set to carry; it
// must not change while the map is in use.
func requestToHeaders(method, path, authority, scheme string, hdr http.Header) *Headers {
	n := 4
	for _, vs := range hdr {
		n += len(vs)
	}
	h := &Headers{fields: make([]HeaderField, 0, n), origin: hdr}
	h.fields = append(h.fields,
		HeaderField{":authority", authority},
		HeaderField{":path", path},
		HeaderField{":method", method},
		HeaderField{":scheme", scheme},
	)
	for k, vs := range hdr {
		lk := lowerName(k)
		for _, v := range vs {
			h.fields = append(h.fields, HeaderField{lk, v})
		}
	}
	return h
}

// responseToHeaders converts an upstream response header set; hdr must not
// change while the map is in use.
func responseToHeaders(status int, hdr http.Header) *Headers {
	n := 1
	for _, vs := range hdr {
		n += len(vs)
	}
	h := &Headers{fields: make([]HeaderField, 0, n), origin: hdr}
	h.fields = append(h.fields, HeaderField{":status", itoa(status)})
	for k, vs := range hdr {
		lk := lowerName(k)
		for _, v := range vs {
			h.fields = append(h.fields, HeaderField{lk, v})
		}
	}
	return h
}

// toHTTPHeader adds the regular (non-pseudo) fields to dst. The values
// share one new backing array.
func (h *Headers) toHTTPHeader(dst http.Header) {
	if h.origin != nil {
		n := 0
		for _, vs := range h.origin {
			n += len(vs)
		}
		slab := make([]string, 0, n)
		for k, vs := range h.origin {
			start := len(slab)
			slab = append(slab, vs...)
			addValues(dst, k, slab[start:len(slab):len(slab)])
		}
		return
	}
	n := 0
	for _, f := range h.fields {
		if !strings.HasPrefix(f.Name, ":") {
			n++
		}
	}
	slab := make([]string, n)
	i := 0
	for _, f := range h.fields {
		if strings.HasPrefix(f.Name, ":") {
			continue
		}
		slab[i] = f.Value
		addValues(dst, canonicalName(f.Name), slab[i:i+1:i+1])
		i++
	}
}

// addValues appends vs to dst[k], taking vs itself when dst has none.
func addValues(dst http.Header, k string, vs []string) {
	if old := dst[k]; len(old) > 0 {
		dst[k] = append(old, vs...)
		return
	}
	dst[k] = vs
}

// commonHeaders are header names converted on every request; their two
// spellings are looked up instead of computed (and allocated) each time.
var commonHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
	"Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date", "Etag",
	"Expires", "Forwarded", "Host", "If-Modified-Since", "If-None-Match", "Last-Modified",
	"Location", "Origin", "Pragma", "Referer", "Retry-After", "Server", "Set-Cookie",
	"Strict-Transport-Security", "Te", "Traceparent", "Tracestate", "User-Agent", "Vary",
	"Via", "X-Api-Key", "X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Openai-Organization", "Openai-Project",
	"Openai-Processing-Ms", "Openai-Version", "Anthropic-Version", "Api-Key",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
	"X-Mse-Consumer", "X-Envoy-Original-Path", "Access-Control-Allow-Origin",
}

var lowerOf, canonicalOf = func() (map[string]string, map[string]string) {
	lower := make(map[string]string, len(commonHeaders))
	canon := make(map[string]string, len(commonHeaders))
	for _, c := range commonHeaders {
		l := strings.ToLower(c)
		lower[c], canon[l] = l, c
	}
	return lower, canon
}()

// lowerName is strings.ToLower(k) for a header name.
func lowerName(k string) string {
	if l, ok := lowerOf[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// canonicalName is http.CanonicalHeaderKey(name) for a lower-case name.
func canonicalName(name string) string {
	if c, ok := canonicalOf[name]; ok {
		return c
	}
	return http.CanonicalHeaderKey(name)
}
func itoa(n int) string { return strconv.Itoa(n) }
