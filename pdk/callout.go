package pdk

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
)

// This file is HTTP callouts: requests a plugin sends to a cluster by name
// (proxy_http_call), shaped as wasm-go shapes them (plugins-B.md §0.3).

// DefaultCalloutTimeout is the timeout of a callout that sets none
// (wasm-go's default).
const DefaultCalloutTimeout = 500 * time.Millisecond

// StatusCalloutFailed is the status a callout response carries when the
// host delivered no :status — the call failed, timed out or was reset
// (wasm-go reports 502 too).
const StatusCalloutFailed = 502

// Cluster names the upstream cluster a callout goes to.
type Cluster struct {
	// Name is the cluster name the host resolves, e.g.
	// "outbound|443||llm.dns".
	Name string
	// Host is the callout's default :authority; a URL with a host part
	// overrides it.
	Host string
}

// FQDNCluster is the cluster outbound|<port>||<fqdn>, the form every
// Higress AI plugin uses; fqdn carries its registry suffix (.dns, .static,
// .svc.cluster.local, …). host is the default :authority ("" → fqdn).
func FQDNCluster(fqdn string, port int, host string) Cluster {
	if host == "" {
		host = fqdn
	}
	return Cluster{Name: "outbound|" + strconv.Itoa(port) + "||" + fqdn, Host: host}
}

// StaticCluster is a Higress static-IP service: outbound|<port>||<name>.static.
func StaticCluster(name string, port int) Cluster {
	return Cluster{Name: "outbound|" + strconv.Itoa(port) + "||" + name + ".static", Host: name}
}

// DNSCluster is a Higress DNS service: outbound|<port>||<name>.dns, with
// domain as the :authority.
func DNSCluster(name string, port int, domain string) Cluster {
	if domain == "" {
		domain = name
	}
	return Cluster{Name: "outbound|" + strconv.Itoa(port) + "||" + name + ".dns", Host: domain}
}

// K8sCluster is a Kubernetes service:
// outbound|<port>|<version>|<service>.<namespace>.svc.cluster.local
// (namespace defaults to "default").
func K8sCluster(service, namespace string, port int, version string) Cluster {
	if namespace == "" {
		namespace = "default"
	}
	fqdn := service + "." + namespace + ".svc.cluster.local"
	return Cluster{Name: "outbound|" + strconv.Itoa(port) + "|" + version + "|" + fqdn, Host: fqdn}
}

// HTTPResponse is what a callout returns.
type HTTPResponse struct {
	// Status is the response status, StatusCalloutFailed when the host
	// delivered none, 500 when :status was not a number.
	Status int
	// Headers are the response headers, :status included.
	Headers [][2]string
	// Body is the response body.
	Body []byte
}

// Header returns the first value of a response header (case-insensitive).
func (r *HTTPResponse) Header(name string) (string, bool) { return headerValue(r.Headers, name) }

// HTTPClient sends callouts to one cluster. It is a value: build one per
// configuration (in Parse) and use it from any request.
type HTTPClient struct {
	Cluster Cluster
	// Timeout is the default per-call timeout; 0 means
	// DefaultCalloutTimeout.
	Timeout time.Duration
}

// Get sends a GET; see Call.
func (c HTTPClient) Get(rawURL string, headers [][2]string, cb func(*HTTPResponse)) error {
	return c.Call("GET", rawURL, headers, nil, cb, 0)
}

// Post sends a POST; see Call.
func (c HTTPClient) Post(rawURL string, headers [][2]string, body []byte, cb func(*HTTPResponse)) error {
	return c.Call("POST", rawURL, headers, body, cb, 0)
}

// Call sends method rawURL to the client's cluster. rawURL is a path
// ("/v1/x?y=1") or an absolute URL whose host becomes the :authority;
// :method, :path and :authority in headers are replaced. timeout 0 uses
// the client's. A dispatch the host refuses (unknown cluster, bad
// arguments) is returned and cb never runs; otherwise cb runs exactly once
// with the response, also on failure (Status StatusCalloutFailed), in the
// context of the request that made the call. A panic in cb is recovered
// and logged, and the direction the call was made from is resumed so the
// request does not hang.
//
// The request that made the call must return StopAllWatermark (headers) or
// Pause (body) and resume from cb (ctx.ResumeRequest) or reply.
func (c HTTPClient) Call(method, rawURL string, headers [][2]string, body []byte, cb func(*HTTPResponse), timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("callout to %s: bad URL %q: %w", c.Cluster.Name, rawURL, err)
	}
	authority := c.Cluster.Host
	if u.Host != "" {
		authority = u.Host
	}
	path := "/" + strings.TrimPrefix(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if timeout <= 0 {
		timeout = c.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultCalloutTimeout
	}
	hdrs := make([][2]string, 0, len(headers)+3)
	for _, h := range headers {
		switch strings.ToLower(h[0]) {
		case ":method", ":path", ":authority":
			continue
		}
		hdrs = append(hdrs, h)
	}
	hdrs = append(hdrs, [2]string{":method", method}, [2]string{":path", path}, [2]string{":authority", authority})

	if cb == nil {
		cb = func(*HTTPResponse) {}
	}
	caller := calloutCaller()
	ms := uint32(timeout / time.Millisecond)
	if ms == 0 {
		ms = 1
	}
	_, err = proxywasm.DispatchHttpCall(c.Cluster.Name, hdrs, body, nil, ms, func(_, bodySize, _ int) {
		caller.enter()
		defer caller.guard("http callout response")
		resp := &HTTPResponse{Status: StatusCalloutFailed}
		resp.Headers, _ = proxywasm.GetHttpCallResponseHeaders()
		if bodySize > 0 {
			resp.Body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
		}
		if s, ok := resp.Header(":status"); ok {
			if n, err := strconv.Atoi(s); err == nil {
				resp.Status = n
			} else {
				resp.Status = 500
			}
		}
		Log().Debugf("http call end: cluster %s, %s %s, status %d, %d body bytes", c.Cluster.Name, method, path, resp.Status, len(resp.Body))
		cb(resp)
	})
	if err != nil {
		Log().Warnf("http call to cluster %s refused: %s %s: %v", c.Cluster.Name, method, path, err)
		return fmt.Errorf("callout to %s: %w", c.Cluster.Name, err)
	}
	Log().Debugf("http call start: cluster %s, %s %s (authority %s), timeout %s", c.Cluster.Name, method, path, authority, timeout)
	return nil
}

// callerState is who made a callout, restored when its response arrives.
type callerState struct {
	plugin *pluginMeta
	ctx    *Context
	phase  Phase
}

func calloutCaller() callerState {
	s := callerState{plugin: current.plugin, ctx: current.ctx}
	if s.ctx != nil {
		s.phase = s.ctx.phase
	}
	return s
}

func (s callerState) enter() {
	if s.ctx != nil {
		s.ctx.phase = s.phase
	}
	enter(s.plugin, s.ctx)
}

// guard recovers a panic in a callout callback and resumes the caller's
// direction.
func (s callerState) guard(where string) {
	if x := recover(); x != nil {
		if !recovered(where, x) {
			panic(x)
		}
		if s.ctx != nil && s.phase != PhaseDone {
			s.ctx.resume(s.phase)
		}
	}
}
