package gateway

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func fieldsOf(h *Headers) [][2]string {
	var out [][2]string
	for _, f := range h.Fields() {
		out = append(out, [2]string{f.Name, f.Value})
	}
	return out
}

func TestHeadersOperations(t *testing.T) {
	type op func(h *Headers) error
	cases := []struct {
		name  string
		start []HeaderField
		op    op
		want  [][2]string
		dirty bool
	}{
		{"NewHeaders lower-cases names", []HeaderField{{"Content-Type", "a"}, {":Path", "/"}}, nil,
			[][2]string{{"content-type", "a"}, {":path", "/"}}, false},
		{"Set replaces in place and drops repeats", []HeaderField{{"a", "1"}, {"x", "1"}, {"b", "2"}, {"X", "2"}},
			func(h *Headers) error { return h.Set("X", "new") },
			[][2]string{{"a", "1"}, {"x", "new"}, {"b", "2"}}, true},
		{"Set appends a new name", []HeaderField{{"a", "1"}},
			func(h *Headers) error { return h.Set("New-Name", "v") },
			[][2]string{{"a", "1"}, {"new-name", "v"}}, true},
		{"Add appends a repeat", []HeaderField{{"a", "1"}},
			func(h *Headers) error { return h.Add("A", "2") },
			[][2]string{{"a", "1"}, {"a", "2"}}, true},
		{"Del removes every value, any case", []HeaderField{{"a", "1"}, {"b", "x"}, {"a", "2"}},
			func(h *Headers) error { return h.Del("A") },
			[][2]string{{"b", "x"}}, true},
		{"Del of a missing name is not a change", []HeaderField{{"a", "1"}},
			func(h *Headers) error { return h.Del("zz") },
			[][2]string{{"a", "1"}}, false},
		{"Replace swaps the whole map", []HeaderField{{"a", "1"}},
			func(h *Headers) error { return h.Replace([]HeaderField{{"B", "2"}, {":status", "200"}}) },
			[][2]string{{"b", "2"}, {":status", "200"}}, true},
		{"Replace with nothing empties", []HeaderField{{"a", "1"}},
			func(h *Headers) error { return h.Replace(nil) },
			nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHeaders(tc.start...)
			if h.Dirty() {
				t.Fatal("a new map is dirty")
			}
			if tc.op != nil {
				if err := tc.op(h); err != nil {
					t.Fatal(err)
				}
			}
			if got := fieldsOf(h); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("fields %v, want %v", got, tc.want)
			}
			if h.Dirty() != tc.dirty {
				t.Errorf("dirty %v, want %v", h.Dirty(), tc.dirty)
			}
			if h.Len() != len(tc.want) {
				t.Errorf("Len %d", h.Len())
			}
		})
	}
}

func TestHeadersLookupIsCaseInsensitive(t *testing.T) {
	h := NewHeaders(HeaderField{"X-Multi", "1"}, HeaderField{"other", "o"}, HeaderField{"x-multi", "2"}, HeaderField{"empty", ""})
	if v, ok := h.Get("x-MULTI"); !ok || v != "1" {
		t.Errorf("Get = %q %v, want the first value", v, ok)
	}
	if got := h.Values("X-MULTI"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("Values = %v", got)
	}
	if v, ok := h.Get("empty"); !ok || v != "" {
		t.Errorf("an empty value must be present: %q %v", v, ok)
	}
	if v, ok := h.Get("missing"); ok || v != "" {
		t.Errorf("Get(missing) = %q %v", v, ok)
	}
	if h.Value("Other") != "o" || h.Value("missing") != "" {
		t.Errorf("Value")
	}
	if h.Values("missing") != nil {
		t.Errorf("Values(missing) not nil")
	}
}

func TestHeadersSealed(t *testing.T) {
	h := NewHeaders(HeaderField{"a", "1"})
	h.Seal()
	if !h.Sealed() {
		t.Fatal("not sealed")
	}
	for name, err := range map[string]error{
		"Set":     h.Set("a", "2"),
		"Add":     h.Add("b", "2"),
		"Del":     h.Del("a"),
		"Replace": h.Replace(nil),
	} {
		if !errors.Is(err, ErrHeadersSealed) {
			t.Errorf("%s on a sealed map: %v, want ErrHeadersSealed", name, err)
		}
	}
	if got := fieldsOf(h); !reflect.DeepEqual(got, [][2]string{{"a", "1"}}) || h.Dirty() {
		t.Errorf("a sealed map changed: %v dirty=%v", got, h.Dirty())
	}
	c := h.Clone()
	if c.Sealed() || c.Dirty() {
		t.Errorf("Clone must be unsealed and clean")
	}
	if err := c.Set("a", "3"); err != nil || h.Value("a") != "1" || c.Value("a") != "3" {
		t.Errorf("Clone shares state with the original: %v", err)
	}
}

func TestHeadersDirtyFlag(t *testing.T) {
	h := NewHeaders(HeaderField{"a", "1"})
	_ = h.Set("a", "2")
	if !h.Dirty() {
		t.Fatal("Set did not mark the map")
	}
	h.ResetDirty()
	if h.Dirty() {
		t.Fatal("ResetDirty did not clear")
	}
	_ = h.Del("nothing")
	if h.Dirty() {
		t.Error("Del of a missing name marked the map")
	}
	_ = h.Add("b", "1")
	if !h.Dirty() {
		t.Error("Add did not mark the map")
	}
}

func TestRemoveHopHeaders(t *testing.T) {
	cases := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"standard hop headers", http.Header{
			"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Proxy-Connection": {"x"},
			"Proxy-Authenticate": {"x"}, "Proxy-Authorization": {"x"}, "Te": {"gzip"},
			"Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"},
			"Content-Type": {"text/plain"}, "Authorization": {"Bearer k"},
		}, http.Header{"Content-Type": {"text/plain"}, "Authorization": {"Bearer k"}}},
		{"headers named by Connection", http.Header{
			"Connection": {"close, X-Hop-One", "x-hop-two"}, "X-Hop-One": {"1"}, "X-Hop-Two": {"2"}, "X-Keep": {"k"},
		}, http.Header{"X-Keep": {"k"}}},
		{"Te: trailers is kept", http.Header{"Te": {"gzip, trailers"}}, http.Header{"Te": {"trailers"}}},
		{"Te: trailers is kept when Connection names TE", http.Header{"Connection": {"TE"}, "Te": {"trailers"}},
			http.Header{"Te": {"trailers"}}},
		{"Te without trailers is dropped", http.Header{"Te": {"deflate"}}, http.Header{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			removeHopHeaders(h)
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("got %v, want %v", h, tc.want)
			}
		})
	}
}

func TestRequestToHeadersPseudoFirst(t *testing.T) {
	h := requestToHeaders("POST", "/v1/x?y=1", "example.com:8080", "http", http.Header{"X-A": {"1", "2"}})
	got := fieldsOf(h)
	want := [][2]string{{":authority", "example.com:8080"}, {":path", "/v1/x?y=1"}, {":method", "POST"}, {":scheme", "http"}, {"x-a", "1"}, {"x-a", "2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	dst := http.Header{}
	h.toHTTPHeader(dst)
	if !reflect.DeepEqual(dst, http.Header{"X-A": {"1", "2"}}) {
		t.Errorf("toHTTPHeader kept pseudo-headers or lost values: %v", dst)
	}
}

// TestToHTTPHeaderFromOrigin: an unchanged map converts back by copying
// the header set it was made from, with the same result as converting its
// fields; any change to it converts the fields, and neither shares value
// slices with the source.
func TestToHTTPHeaderFromOrigin(t *testing.T) {
	src := func() http.Header {
		return http.Header{
			"Content-Type": {"application/json"}, "X-A": {"1", "2"},
			"X-Unusual-Name": {"v"}, "Authorization": {"Bearer k"},
		}
	}
	convert := func(h *Headers, dst http.Header) http.Header {
		h.toHTTPHeader(dst)
		return dst
	}
	for _, tc := range []struct {
		name   string
		make   func() *Headers
		mutate func(*Headers)
		want   http.Header
	}{
		{"request", func() *Headers { return requestToHeaders("GET", "/", "h", "http", src()) }, nil, src()},
		{"response", func() *Headers { return responseToHeaders(200, src()) }, nil, src()},
		{"set", func() *Headers { return responseToHeaders(200, src()) },
			func(h *Headers) { _ = h.Set("x-a", "3") },
			http.Header{"Content-Type": {"application/json"}, "X-A": {"3"}, "X-Unusual-Name": {"v"}, "Authorization": {"Bearer k"}}},
		{"add", func() *Headers { return responseToHeaders(200, src()) },
			func(h *Headers) { _ = h.Add("X-New", "n") },
			http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}, "X-Unusual-Name": {"v"}, "Authorization": {"Bearer k"}, "X-New": {"n"}}},
		{"del", func() *Headers { return responseToHeaders(200, src()) },
			func(h *Headers) { _ = h.Del("authorization") },
			http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}, "X-Unusual-Name": {"v"}}},
		{"replace", func() *Headers { return responseToHeaders(200, src()) },
			func(h *Headers) { _ = h.Replace([]HeaderField{{":status", "200"}, {"x-b", "b"}}) },
			http.Header{"X-B": {"b"}}},
		{"pseudo only", func() *Headers { return requestToHeaders("GET", "/", "h", "http", src()) },
			func(h *Headers) { _ = h.Set(":path", "/other") }, src()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.make()
			if tc.mutate != nil {
				tc.mutate(h)
				if h.origin != nil {
					t.Fatal("a changed map kept its origin")
				}
			} else if h.origin == nil {
				t.Fatal("an unchanged map has no origin")
			}
			got := convert(h, http.Header{"Preset": {"p"}})
			want := tc.want
			want["Preset"] = []string{"p"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			// The slow path agrees with the fast one.
			slow := &Headers{fields: h.fields}
			if s := convert(slow, http.Header{"Preset": {"p"}}); !reflect.DeepEqual(s, want) {
				t.Errorf("fields convert to %v, want %v", s, want)
			}
			// Appending to a converted value never writes into another.
			got["X-A"] = append(got["X-A"], "z")
			if again := convert(h, http.Header{}); len(again["X-A"]) > 0 && again["X-A"][len(again["X-A"])-1] == "z" {
				t.Error("converted values share storage")
			}
		})
	}
	for _, c := range commonHeaders {
		if got := lowerName(c); got != strings.ToLower(c) {
			t.Errorf("lowerName(%q) = %q", c, got)
		}
		if got := canonicalName(strings.ToLower(c)); got != http.CanonicalHeaderKey(c) {
			t.Errorf("canonicalName(%q) = %q, want %q", strings.ToLower(c), got, http.CanonicalHeaderKey(c))
		}
	}
}
