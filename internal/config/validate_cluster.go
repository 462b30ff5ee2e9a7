package config

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file checks a Cluster: type, endpoints, TLS, balancing, health checks.

var (
	clusterTypes = []string{v1alpha1.ClusterStatic, v1alpha1.ClusterDNS, v1alpha1.ClusterRedis}
	balancings   = []string{v1alpha1.BalanceRoundRobin, v1alpha1.BalanceLeastRequest, v1alpha1.BalanceRandom, v1alpha1.BalanceWeighted}
)

func (s scope) cluster(c *v1alpha1.ClusterSpec) {
	typ := c.Type
	if typ == "" {
		typ = v1alpha1.ClusterStatic
	} else if !slices.Contains(clusterTypes, typ) {
		s.err("spec.type", fmt.Sprintf("unknown cluster type %q", typ), oneOf(typ, clusterTypes))
		typ = ""
	}
	isRedis := typ == v1alpha1.ClusterRedis
	embedded := c.Redis != nil && c.Redis.Embedded

	switch {
	case len(c.Endpoints) == 0 && isRedis && !embedded:
		s.err("spec.endpoints", "a redis cluster needs at least one endpoint", "list host:port endpoints, or set redis.embedded: true for the in-process store")
	case len(c.Endpoints) == 0 && !embedded:
		s.err("spec.endpoints", "at least one endpoint is required", `e.g. endpoints: [{address: "https://api.openai.com"}]`)
	case len(c.Endpoints) > 0 && embedded:
		s.warn("spec.endpoints", "endpoints are ignored because redis.embedded is true", "remove them, or set embedded: false to use them")
	}
	if c.Redis != nil && !isRedis && typ != "" {
		s.err("spec.redis", "redis options apply only to clusters of type redis", "set type: redis, or remove redis")
	}
	if c.Redis != nil && c.Redis.DB < 0 {
		s.err("spec.redis.db", "must not be negative", "")
	}

	var plain, https, http []int
	explicitWeight, positive := -1, false
	for i, e := range c.Endpoints {
		p := fmt.Sprintf("spec.endpoints[%d]", i)
		switch scheme := s.endpoint(p+".address", e.Address, isRedis); scheme {
		case "https":
			https = append(https, i)
		case "http":
			http = append(http, i)
		case "plain":
			plain = append(plain, i)
		}
		if e.Weight < 0 {
			s.err(p+".weight", fmt.Sprintf("weight %d is negative", e.Weight), "use 0 to take the endpoint out of weighted balancing")
		}
		if s.doc.has(p + ".weight") {
			if explicitWeight < 0 {
				explicitWeight = i
			}
			if e.Weight > 0 {
				positive = true
			}
		} else {
			positive = true // the default weight is 1
		}
	}
	// host:port endpoints speak TLS when the cluster sets tls.
	if c.TLS != nil {
		plain = nil
	}
	if len(https) > 0 && len(plain)+len(http) > 0 {
		other := slices.Concat(plain, http)
		s.err(fmt.Sprintf("spec.endpoints[%d].address", other[0]),
			fmt.Sprintf("endpoints mix https:// (spec.endpoints[%d]) with plain-text ones", https[0]),
			"TLS is set per cluster: write every endpoint with https://, set tls, or split them into two clusters")
	}
	if c.TLS != nil && len(http) > 0 {
		s.err(fmt.Sprintf("spec.endpoints[%d].address", http[0]), "endpoint uses http:// but the cluster sets tls",
			"use https:// or host:port for a TLS cluster, or remove tls")
	}

	switch {
	case c.Balancing == "" || c.Balancing == v1alpha1.BalanceWeighted:
		if c.Balancing == v1alpha1.BalanceWeighted && len(c.Endpoints) > 0 && !positive {
			s.err("spec.endpoints", "every endpoint has weight 0, so none would receive traffic",
				"give at least one endpoint a positive weight")
		}
	case !slices.Contains(balancings, c.Balancing):
		s.err("spec.balancing", fmt.Sprintf("unknown balancing policy %q", c.Balancing), oneOf(c.Balancing, balancings))
	}
	if explicitWeight >= 0 && c.Balancing != v1alpha1.BalanceWeighted {
		s.warn(fmt.Sprintf("spec.endpoints[%d].weight", explicitWeight), "weights are used only by balancing: weighted",
			"set balancing: weighted, or remove the weights")
	}
	if c.Port < 0 || c.Port > 65535 {
		s.err("spec.port", fmt.Sprintf("port %d is not from 0 to 65535", c.Port), "")
	}

	if t := c.TLS; t != nil {
		if t.SNI != "" && !validHostname(t.SNI) {
			s.err("spec.tls.sni", fmt.Sprintf("%q is not a valid server name", t.SNI), "")
		}
		if t.CAFile != "" {
			if ca := s.readableFile("spec.tls.caFile", t.CAFile); ca != "" {
				s.caBundle("spec.tls.caFile", t.CAFile, ca)
			}
		}
		if t.InsecureSkipVerify {
			s.warn("spec.tls.insecureSkipVerify", "certificate verification is off: any server certificate is accepted",
				"use this in tests only; set caFile to trust a private CA")
		}
	}

	if h := c.HealthCheck; h != nil {
		s.healthCheck(h, isRedis)
	}
	if r := c.Retries; r != nil && (r.ConnectFailure < 0 || r.ConnectFailure > maxConnectRetries) {
		s.err("spec.retries.connectFailure", fmt.Sprintf("%d is not from 0 to %d", r.ConnectFailure, maxConnectRetries), "")
	}
	if c.DNSRefresh.Duration != 0 && typ != v1alpha1.ClusterDNS && typ != "" {
		s.warn("spec.dnsRefresh", "dnsRefresh applies only to clusters of type dns", "set type: dns, or remove dnsRefresh")
	}
}

const maxConnectRetries = 10

// endpoint checks one endpoint address and says how it is written:
// "https", "http", "plain" (host:port) or "" when invalid.
func (s scope) endpoint(path, addr string, isRedis bool) string {
	if !strings.Contains(addr, "://") {
		if _, _, ok := s.hostPort(path, addr, false, 1); ok {
			return "plain"
		}
		return ""
	}
	u, err := url.Parse(addr)
	if err != nil {
		s.err(path, showURL(addr)+" is not a valid URL", "")
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if isRedis {
		s.err(path, "redis endpoints are host:port addresses, not URLs", `e.g. "127.0.0.1:6379"; put credentials in spec.redis`)
		return ""
	}
	if scheme != "http" && scheme != "https" {
		s.err(path, fmt.Sprintf("scheme %q is not supported", u.Scheme), "use https://, http:// or host:port")
		return ""
	}
	ok := true
	if u.User != nil {
		s.err(path, "endpoint URLs must not contain credentials", "pass credentials in request headers, e.g. with a plugin")
		ok = false
	}
	host := u.Hostname()
	if host == "" || !validHost(host) {
		s.err(path, showURL(addr)+" has no valid host", "")
		ok = false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			s.err(path, fmt.Sprintf("port %q is not a number from 1 to 65535", p), "")
			ok = false
		}
	}
	if u.Path != "" && u.Path != "/" {
		s.err(path, fmt.Sprintf("endpoint URL has a path (%q)", u.Path),
			"an endpoint names a server only; change paths with a route's rewrite")
		ok = false
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		s.err(path, "endpoint URL has a query or fragment", "an endpoint names a server only: scheme, host and port")
		ok = false
	}
	if !ok {
		return ""
	}
	return scheme
}

func (s scope) caBundle(path, written, resolved string) {
	data, err := os.ReadFile(resolved)
	if err != nil {
		s.err(path, fmt.Sprintf("file %q cannot be read: %s", written, pathErrorText(err)), "")
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		s.err(path, fmt.Sprintf("file %q holds no PEM certificate", written),
			"caFile must be a PEM bundle of -----BEGIN CERTIFICATE----- blocks")
	}
}

func (s scope) healthCheck(h *v1alpha1.HealthCheck, isRedis bool) {
	const p = "spec.healthCheck"
	if isRedis {
		s.err(p, "health checks probe HTTP and apply only to static and dns clusters", "remove healthCheck")
		return
	}
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		s.err(p+".path", fmt.Sprintf("path %q must start with /", h.Path), "")
	}
	if h.UnhealthyThreshold < 0 {
		s.err(p+".unhealthyThreshold", "must be at least 1", "omit it for the default, 2")
	}
	if h.HealthyThreshold < 0 {
		s.err(p+".healthyThreshold", "must be at least 1", "omit it for the default, 1")
	}
	interval := orDuration(h.Interval.Duration, defaultHealthInterval)
	timeout := orDuration(h.Timeout.Duration, defaultHealthTimeout)
	if timeout > interval {
		path := p + ".timeout"
		if !s.doc.has(path) {
			path = p + ".interval"
		}
		s.err(path, fmt.Sprintf("timeout %s is longer than the interval %s", timeout, interval),
			"a probe must finish before the next one starts")
	}
	for i, st := range h.ExpectedStatuses {
		if st < 100 || st > 599 {
			s.err(fmt.Sprintf("%s.expectedStatuses[%d]", p, i), fmt.Sprintf("%d is not an HTTP status from 100 to 599", st), "")
		}
	}
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
