package pdk

// This file tells a plugin whether the request has a body, so a plugin
// that waits for the body (returning Pause at request headers) can answer
// a body-less request instead of holding it forever.

// HasRequestBody reports whether a body follows the request headers: false
// when the headers ended the stream (a GET, or a POST with
// content-length 0). The body callbacks never run for such a request.
func (c *Context) HasRequestBody() bool { return !c.headersEndStream }
