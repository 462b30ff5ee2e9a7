package pdk

import (
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
)

// This file is host properties: reading them, and the Higress-specific
// ones a plugin writes to steer the host (plugins-A.md §0.3).

// GetProperty reads a host property. path is the property's segments:
// GetProperty("route_name"), GetProperty("request", "path"). A property the
// host does not have gives ok false.
func GetProperty(path ...string) (value []byte, ok bool) {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return nil, false
	}
	return v, true
}

func propertyString(path ...string) string {
	v, _ := GetProperty(path...)
	return string(v)
}

// Property reads a host property as a string; see GetProperty.
func (c *Context) Property(path ...string) (string, bool) {
	v, ok := GetProperty(path...)
	return string(v), ok
}

// SetProperty writes the single-segment property name for this request.
// Higress stores unknown names as filter state wasm.<name>, readable by
// later plugins and the access log. An empty value is refused by the SDK.
func (c *Context) SetProperty(name string, value []byte) error {
	err := proxywasm.SetProperty([]string{name}, value)
	if err != nil {
		c.Log().Debugf("set property %s: %v", name, err)
	}
	return err
}

// DisableReroute sets clear_route_cache=off: header changes this plugin
// makes for the request do not make the host pick the route again.
func (c *Context) DisableReroute() {
	_ = c.SetProperty("clear_route_cache", []byte("off"))
}

// SetRequestBodyBufferLimit raises (or lowers) how many request-body bytes
// the host buffers for this request (set_decoder_buffer_limit).
func (c *Context) SetRequestBodyBufferLimit(n uint32) {
	_ = c.SetProperty("set_decoder_buffer_limit", []byte(strconv.FormatUint(uint64(n), 10)))
}

// SetResponseBodyBufferLimit is SetRequestBodyBufferLimit for the response
// (set_encoder_buffer_limit).
func (c *Context) SetResponseBodyBufferLimit(n uint32) {
	_ = c.SetProperty("set_encoder_buffer_limit", []byte(strconv.FormatUint(uint64(n), 10)))
}
