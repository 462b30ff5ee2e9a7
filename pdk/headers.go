package pdk

import (
	"errors"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// This file is header access for the current request. Request headers can
// be read and written while the plugin holds them (request-headers phase,
// or later while it paused them); response headers likewise. Outside that
// window Envoy refuses writes, and so does Sluice.

// RequestHeader returns a request header's value; ok is false when the
// header is absent or cannot be read in this phase. In the request-headers
// callback it answers from the headers the kit read before calling the
// plugin (no host call), until the plugin changes a request header
// through the Context.
func (c *Context) RequestHeader(name string) (value string, ok bool) {
	if c.reqHeaders != nil {
		return headerValue(c.reqHeaders, name)
	}
	v, err := proxywasm.GetHttpRequestHeader(name)
	return v, err == nil
}

// RequestHeaders returns every request header, pseudo-headers included. In
// the request-headers callback it returns the list the kit read (no host
// call; do not modify it), as RequestHeader does.
func (c *Context) RequestHeaders() ([][2]string, error) {
	if c.reqHeaders != nil {
		return c.reqHeaders, nil
	}
	return proxywasm.GetHttpRequestHeaders()
}

// SetRequestHeader sets a request header, replacing any value.
func (c *Context) SetRequestHeader(name, value string) error {
	c.reqHeaders = nil
	return proxywasm.ReplaceHttpRequestHeader(name, value)
}

// AddRequestHeader adds a value to a request header.
func (c *Context) AddRequestHeader(name, value string) error {
	c.reqHeaders = nil
	return proxywasm.AddHttpRequestHeader(name, value)
}

// RemoveRequestHeader removes a request header; removing an absent header
// is not an error.
func (c *Context) RemoveRequestHeader(name string) error {
	c.reqHeaders = nil
	return ignoreNotFound(proxywasm.RemoveHttpRequestHeader(name))
}

// ResponseHeader returns a response header's value. In the
// response-headers callback content-type is answered from what the kit
// read before calling the plugin, until the plugin changes a response
// header through the Context.
func (c *Context) ResponseHeader(name string) (value string, ok bool) {
	if c.respCT.known && strings.EqualFold(name, "content-type") {
		return c.respCT.value, c.respCT.ok
	}
	v, err := proxywasm.GetHttpResponseHeader(name)
	return v, err == nil
}

// ResponseHeaders returns every response header, :status included.
func (c *Context) ResponseHeaders() ([][2]string, error) { return proxywasm.GetHttpResponseHeaders() }

// SetResponseHeader sets a response header, replacing any value.
func (c *Context) SetResponseHeader(name, value string) error {
	c.respCT.known = false
	return proxywasm.ReplaceHttpResponseHeader(name, value)
}

// AddResponseHeader adds a value to a response header.
func (c *Context) AddResponseHeader(name, value string) error {
	c.respCT.known = false
	return proxywasm.AddHttpResponseHeader(name, value)
}

// RemoveResponseHeader removes a response header.
func (c *Context) RemoveResponseHeader(name string) error {
	c.respCT.known = false
	return ignoreNotFound(proxywasm.RemoveHttpResponseHeader(name))
}

// ReplaceRequestBody replaces the request body buffered so far (in a
// buffered body callback: the whole body).
func (c *Context) ReplaceRequestBody(body []byte) error {
	return proxywasm.ReplaceHttpRequestBody(body)
}

// ReplaceResponseBody replaces the response body buffered so far.
func (c *Context) ReplaceResponseBody(body []byte) error {
	return proxywasm.ReplaceHttpResponseBody(body)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, types.ErrorStatusNotFound) {
		return nil
	}
	return err
}

// headerValue finds a header in pairs, case-insensitively.
func headerValue(pairs [][2]string, name string) (string, bool) {
	for _, p := range pairs {
		if strings.EqualFold(p[0], name) {
			return p[1], true
		}
	}
	return "", false
}
