package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Defaults, applied after validation passed. docs/configuration.md lists
// each of them; keep the two in step. A zero value (0, "", 0s) means
// "unset" and takes the default, with the exceptions documented on the
// fields (an explicit endpoint weight of 0 stays 0; maxRequestBodyBytes -1
// stays -1).
const (
	defaultGatewayName         = "default"
	defaultListenerAddress     = "127.0.0.1:8080"
	defaultAdminAddress        = "127.0.0.1:9901"
	defaultReadHeaderTimeout   = 10 * time.Second
	defaultIdleTimeout         = 120 * time.Second
	defaultMaxHeaderBytes      = 65536
	defaultMaxRequestBodyBytes = 100 << 20
	defaultAccessLogPath       = "stdout"
	defaultSampleRatio         = 1.0
	defaultServiceName         = "sluice"
	defaultShutdownTimeout     = 15 * time.Second

	defaultConnectTimeout     = 5 * time.Second
	defaultRequestTimeout     = 60 * time.Second
	defaultHealthPath         = "/"
	defaultHealthInterval     = 10 * time.Second
	defaultHealthTimeout      = 2 * time.Second
	defaultUnhealthyThreshold = 2
	defaultHealthyThreshold   = 1
	defaultDNSRefresh         = 30 * time.Second
	defaultEndpointWeight     = 1
	defaultRedisPort          = 6379

	routeHTTP = "HTTP"
)

func defaultListenerName(i int) string { return "listener-" + strconv.Itoa(i) }

// applyDefaults fills the defaults into the resources of a valid set and
// stores them in snap, in declaration order. Relative paths become
// absolute, resolved against the directory of the file that declared them.
func applyDefaults(set *resources, snap *Snapshot) {
	if set.gateway != nil {
		snap.Gateway = set.gateway.obj
		gatewayDefaults(&snap.Gateway.Spec, set.gateway.doc)
	} else {
		snap.Gateway = &v1alpha1.Gateway{
			TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindGateway},
			Metadata: v1alpha1.ObjectMeta{Name: defaultGatewayName},
		}
		gatewayDefaults(&snap.Gateway.Spec, nil)
	}
	for _, r := range set.clusters {
		clusterDefaults(&r.obj.Spec, r.doc)
		snap.Clusters = append(snap.Clusters, r.obj)
	}
	for _, r := range set.routes {
		routeDefaults(&r.obj.Spec)
		snap.Routes = append(snap.Routes, r.obj)
	}
	for _, r := range set.plugins {
		pluginDefaults(&r.obj.Spec, r.doc)
		snap.WasmPlugins = append(snap.WasmPlugins, r.obj)
	}
}

// absPath resolves a configured path against the directory of the file
// that declared it and makes it absolute. doc is nil for built-in values.
func absPath(doc *document, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if doc != nil {
		p = filepath.Join(filepath.Dir(doc.file), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

func setDuration(d *v1alpha1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func gatewayDefaults(g *v1alpha1.GatewaySpec, doc *document) {
	if len(g.Listeners) == 0 {
		g.Listeners = []v1alpha1.Listener{{Address: defaultListenerAddress}}
	}
	for i := range g.Listeners {
		l := &g.Listeners[i]
		if l.Name == "" {
			l.Name = defaultListenerName(i)
		}
		if l.HTTP2 == nil {
			on := true
			l.HTTP2 = &on
		}
		if l.TLS != nil {
			l.TLS.CertFile = absPath(doc, l.TLS.CertFile)
			l.TLS.KeyFile = absPath(doc, l.TLS.KeyFile)
		}
	}
	setDuration(&g.Timeouts.ReadHeader, defaultReadHeaderTimeout)
	setDuration(&g.Timeouts.Idle, defaultIdleTimeout)
	// Timeouts.Request: 0 means no bound, which is the default.
	if g.Limits.MaxHeaderBytes == 0 {
		g.Limits.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if g.Limits.MaxRequestBodyBytes == 0 {
		g.Limits.MaxRequestBodyBytes = defaultMaxRequestBodyBytes
	}
	if g.Admin.Address == "" {
		g.Admin.Address = defaultAdminAddress
	}
	switch g.AccessLog.Path {
	case "":
		g.AccessLog.Path = defaultAccessLogPath
	case "stdout", "stderr", "off":
	default:
		g.AccessLog.Path = absPath(doc, g.AccessLog.Path)
	}
	if g.Tracing.SampleRatio == nil {
		r := defaultSampleRatio
		g.Tracing.SampleRatio = &r
	}
	if g.Tracing.ServiceName == "" {
		g.Tracing.ServiceName = defaultServiceName
	}
	setDuration(&g.ShutdownTimeout, defaultShutdownTimeout)
	if d := g.Wasm.CacheDir; d != "" && d != "off" {
		g.Wasm.CacheDir = absPath(doc, d)
	}
	if g.Wasm.MemoryLimitMiB == 0 {
		g.Wasm.MemoryLimitMiB = 1024
	}
	if g.Wasm.RecycleMemoryMiB == 0 {
		g.Wasm.RecycleMemoryMiB = 512
	}
}

func clusterDefaults(c *v1alpha1.ClusterSpec, doc *document) {
	if c.Type == "" {
		c.Type = v1alpha1.ClusterStatic
	}
	for i := range c.Endpoints {
		// An explicit weight, 0 included, is kept.
		if !doc.has("spec.endpoints[" + strconv.Itoa(i) + "].weight") {
			c.Endpoints[i].Weight = defaultEndpointWeight
		}
	}
	if c.Port == 0 {
		switch {
		case len(c.Endpoints) > 0:
			c.Port = endpointPort(c.Endpoints[0].Address)
		case c.Type == v1alpha1.ClusterRedis:
			c.Port = defaultRedisPort
		}
	}
	setDuration(&c.ConnectTimeout, defaultConnectTimeout)
	setDuration(&c.RequestTimeout, defaultRequestTimeout)
	if c.Balancing == "" {
		c.Balancing = v1alpha1.BalanceRoundRobin
	}
	if h := c.HealthCheck; h != nil {
		if h.Path == "" {
			h.Path = defaultHealthPath
		}
		setDuration(&h.Interval, defaultHealthInterval)
		setDuration(&h.Timeout, defaultHealthTimeout)
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = defaultUnhealthyThreshold
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = defaultHealthyThreshold
		}
	}
	if c.Type == v1alpha1.ClusterDNS {
		setDuration(&c.DNSRefresh, defaultDNSRefresh)
	}
	if c.TLS != nil {
		c.TLS.CAFile = absPath(doc, c.TLS.CAFile)
	}
}

// endpointPort is the port of a validated endpoint address: explicit, or
// the scheme's default for URLs.
func endpointPort(addr string) int {
	scheme, rest, isURL := strings.Cut(addr, "://")
	if !isURL {
		rest = addr
	}
	hostPort, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.HasSuffix(hostPort, "]") {
		if p, err := strconv.Atoi(hostPort[i+1:]); err == nil {
			return p
		}
	}
	if isURL && strings.EqualFold(scheme, "https") {
		return 443
	}
	return 80
}

func routeDefaults(r *v1alpha1.RouteSpec) {
	for i, m := range r.Match.Methods {
		r.Match.Methods[i] = strings.ToUpper(m)
	}
	for i, h := range r.Hosts {
		r.Hosts[i] = strings.ToLower(h)
	}
}

func pluginDefaults(p *v1alpha1.WasmPluginSpec, doc *document) {
	scheme, rest := splitScheme(p.URL)
	switch scheme {
	case "oci":
		p.URL = "oci://" + rest
	case "file":
		if !filepath.IsAbs(rest) {
			p.URL = "file://" + filepath.ToSlash(absPath(doc, rest))
		}
	}
	p.SHA256 = strings.ToLower(p.SHA256)
	// A Docker config file, relative to the configuration file.
	p.ImagePullSecret = absPath(doc, p.ImagePullSecret)
	if p.Phase == "" {
		p.Phase = v1alpha1.PhaseUnspecified
	}
	if p.FailStrategy == "" {
		p.FailStrategy = v1alpha1.FailClose
	}
	if p.ImagePullPolicy == "" || p.ImagePullPolicy == v1alpha1.PullUnspecified {
		p.ImagePullPolicy = v1alpha1.PullIfNotPresent
		if scheme == "oci" {
			// A moving tag is pulled every time; a fixed tag or a digest once.
			if tag, _, hasDigest := ociTagDigest(rest); !hasDigest && (tag == "" || tag == "latest") {
				p.ImagePullPolicy = v1alpha1.PullAlways
			}
		}
	}
	if p.VMConfig != nil {
		for i := range p.VMConfig.Env {
			if p.VMConfig.Env[i].ValueFrom == "" {
				p.VMConfig.Env[i].ValueFrom = v1alpha1.EnvInline
			}
		}
	}
	for i := range p.MatchRules {
		if p.MatchRules[i].RouteType == "" {
			p.MatchRules[i].RouteType = routeHTTP
		}
	}
}
