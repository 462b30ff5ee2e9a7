package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file checks a Gateway: listeners, admin, access log, tracing, limits.

const maxHeaderBytesLimit = 1 << 20

func (s scope) gateway(g *v1alpha1.GatewaySpec) {
	s.wasmRuntime(&g.Wasm)
	var bounds []bound
	names := map[string]int{}
	for i, l := range g.Listeners {
		p := fmt.Sprintf("spec.listeners[%d]", i)
		name := l.Name
		if name == "" {
			name = defaultListenerName(i)
		} else if !k8sLabelRE.MatchString(strings.ToLower(name)) || len(name) > 63 {
			s.err(p+".name", fmt.Sprintf("listener name %q is not valid", name),
				"use letters, digits and '-', at most 63 characters")
		}
		if j, dup := names[name]; dup {
			hint := "give each listener its own name"
			if l.Name == "" {
				hint = "this listener has no name and its default name is taken; give it a name"
			}
			s.err(p+".name", fmt.Sprintf("listener name %q is already used by spec.listeners[%d]", name, j), hint)
		} else {
			names[name] = i
		}
		host, port, ok := s.hostPort(p+".address", l.Address, true, 0)
		if ok {
			for _, b := range bounds {
				if b.overlaps(host, port) {
					s.err(p+".address", fmt.Sprintf("address %q conflicts with %s", l.Address, b.what),
						"each listener needs its own port")
					break
				}
			}
			bounds = append(bounds, bound{host, port, fmt.Sprintf("listener %q at %s", name, l.Address)})
		}
		if l.TLS != nil {
			s.listenerTLS(p+".tls", l.TLS)
		}
	}
	if len(g.Listeners) == 0 {
		bounds = append(bounds, bound{"127.0.0.1", 8080, `the default listener "listener-0" at 127.0.0.1:8080`})
	}

	if !g.Admin.Disabled {
		addr, path := g.Admin.Address, "spec.admin.address"
		if addr == "" {
			addr, path = defaultAdminAddress, "spec.admin"
		}
		if host, port, ok := s.hostPort(path, addr, true, 0); ok {
			for _, b := range bounds {
				if b.overlaps(host, port) {
					s.err(path, fmt.Sprintf("admin address %q conflicts with %s", addr, b.what),
						"give the admin listener its own port with spec.admin.address, or set spec.admin.disabled: true")
					break
				}
			}
		}
	}
	if t := g.Admin.BearerToken; t != "" {
		if i := badTokenChar(t); i >= 0 {
			// Never echo the token.
			s.err("spec.admin.bearerToken", fmt.Sprintf("bearer token has a character that is not allowed at position %d", i+1),
				"use letters, digits and - . _ ~ + /, optionally followed by '=' padding")
		}
	}

	switch p := g.AccessLog.Path; p {
	case "", "stdout", "stderr", "off":
	default:
		s.accessLogPath(p)
	}

	t := g.Tracing
	if t.Enabled && t.Endpoint == "" {
		s.err("spec.tracing.endpoint", "an endpoint is required when tracing is enabled",
			`set the OTLP/HTTP traces URL, e.g. "http://127.0.0.1:4318/v1/traces"`)
	}
	if t.Endpoint != "" {
		s.httpURL("spec.tracing.endpoint", t.Endpoint)
	}
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		s.err("spec.tracing.sampleRatio", fmt.Sprintf("sample ratio %v is not between 0 and 1", *r),
			"0 samples no new trace, 1 samples every one")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		p := joinKey("spec.tracing.headers", name)
		if !httpguts.ValidHeaderFieldName(name) {
			s.err(p, fmt.Sprintf("%q is not a valid header name", name), "")
		}
		if !httpguts.ValidHeaderFieldValue(t.Headers[name]) {
			s.err(p, "header value has a character not allowed in HTTP headers (such as a line break)", "")
		}
	}

	if g.Limits.MaxHeaderBytes < 0 {
		s.err("spec.limits.maxHeaderBytes", "must not be negative", "0 means the default, 65536")
	} else if g.Limits.MaxHeaderBytes > maxHeaderBytesLimit {
		s.err("spec.limits.maxHeaderBytes", fmt.Sprintf("%d is more than the maximum, %d (1 MiB)", g.Limits.MaxHeaderBytes, maxHeaderBytesLimit), "")
	}
	if g.Limits.MaxRequestBodyBytes < -1 {
		s.err("spec.limits.maxRequestBodyBytes", fmt.Sprintf("%d is not a valid limit", g.Limits.MaxRequestBodyBytes),
			"use a number of bytes, 0 for the default of 100 MiB, or -1 for no limit")
	}
}

// wasmRuntime checks spec.wasm.
func (s scope) wasmRuntime(w *v1alpha1.WasmRuntime) {
	if w.PoolSize < 0 || w.PoolSize > 64 {
		s.err("spec.wasm.poolSize", fmt.Sprintf("poolSize %d is out of range", w.PoolSize), "use 1 to 64, or leave it unset for min(GOMAXPROCS, 8)")
	}
	if w.MemoryLimitMiB < 0 || w.MemoryLimitMiB > 4096 {
		s.err("spec.wasm.memoryLimitMiB", fmt.Sprintf("memoryLimitMiB %d is out of range", w.MemoryLimitMiB), "use 16 to 4096 (Wasm32 memory is at most 4 GiB)")
	} else if w.MemoryLimitMiB > 0 && w.MemoryLimitMiB < 16 {
		s.err("spec.wasm.memoryLimitMiB", fmt.Sprintf("memoryLimitMiB %d is too small for a Go plugin", w.MemoryLimitMiB), "use at least 16")
	}
	if w.RecycleMemoryMiB < 0 {
		s.err("spec.wasm.recycleMemoryMiB", "recycleMemoryMiB must not be negative", "")
	}
	limit := w.MemoryLimitMiB
	if limit == 0 {
		limit = 1024
	}
	if w.RecycleMemoryMiB > limit {
		s.err("spec.wasm.recycleMemoryMiB", fmt.Sprintf("recycleMemoryMiB %d is above the memory limit %d MiB", w.RecycleMemoryMiB, limit), "recycle below the limit, or instances trap before they are recycled")
	}
}

func (s scope) listenerTLS(p string, t *v1alpha1.ListenerTLS) {
	if t.CertFile == "" {
		s.err(p+".certFile", "certFile is required for a TLS listener", "name the PEM certificate chain file")
	}
	if t.KeyFile == "" {
		s.err(p+".keyFile", "keyFile is required for a TLS listener", "name the PEM private key file")
	}
	var cert, key string
	if t.CertFile != "" {
		cert = s.readableFile(p+".certFile", t.CertFile)
	}
	if t.KeyFile != "" {
		key = s.readableFile(p+".keyFile", t.KeyFile)
	}
	if cert != "" && key != "" {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			s.err(p, "certificate and key cannot be used: "+strings.TrimPrefix(err.Error(), "tls: "),
				"certFile must hold PEM certificates and keyFile the matching PEM private key")
		}
	}
}

func (s scope) accessLogPath(p string) {
	resolved := s.resolve(p)
	dir := filepath.Dir(resolved)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		s.err("spec.accessLog.path", fmt.Sprintf("directory %q of the access log does not exist", dir),
			`create it, or use "stdout", "stderr" or "off"; relative paths are read from the config file's directory`)
		return
	}
	if info, err := os.Stat(resolved); err == nil && info.IsDir() {
		s.err("spec.accessLog.path", fmt.Sprintf("%q is a directory", p), "name a file; it is created if missing and appended to")
	}
}

// badTokenChar is the index of the first character not allowed in an
// RFC 6750 bearer token, or -1.
func badTokenChar(t string) int {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return 0
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return i
		}
	}
	return -1
}
