package cluster

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Endpoint is one upstream address of a cluster. A dns cluster turns each
// configured host into one Endpoint per resolved IP; the others use the
// configured addresses as written.
//
// Endpoint is safe for concurrent use: its health flag and in-flight count
// are atomic and everything else is fixed at creation.
type Endpoint struct {
	address  string // "host:port" that is dialled, e.g. "10.0.0.7:443"
	hostname string // host as configured, e.g. "api.openai.com": default SNI, health-check Host
	port     int
	scheme   string // "http" or "https"; "redis" or "rediss" in a redis cluster
	weight   int

	healthy  atomic.Bool
	inflight atomic.Int64

	// swrrCurrent is the smooth weighted round robin state; only the
	// weighted balancer touches it, under its mutex.
	swrrCurrent int64
}

func newEndpoint(s endpointSpec, host string) *Endpoint {
	e := &Endpoint{
		address:  net.JoinHostPort(host, strconv.Itoa(s.port)),
		hostname: s.host,
		port:     s.port,
		scheme:   s.scheme,
		weight:   s.weight,
	}
	e.healthy.Store(true)
	return e
}

// Address is the "host:port" dialled; for a dns cluster the host is an IP.
// It is the key of upstream override and of proxy_get_upstream_hosts.
func (e *Endpoint) Address() string { return e.address }

// Hostname is the host as configured, before DNS resolution.
func (e *Endpoint) Hostname() string { return e.hostname }

// Scheme is "http" or "https" ("redis"/"rediss" in a redis cluster).
func (e *Endpoint) Scheme() string { return e.scheme }

// Healthy reports whether the health check currently admits the endpoint.
// Endpoints of clusters without a health check are always healthy.
func (e *Endpoint) Healthy() bool { return e.healthy.Load() }

// Weight is the endpoint's weight under the weighted policy; 0 means it is
// only reached through upstream override.
func (e *Endpoint) Weight() int { return e.weight }

// InFlight is the number of requests sent to the endpoint whose response
// body has not been closed yet (what least_request balances on).
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// authority is the Host header for requests the cluster makes on its own
// (health checks): the configured host, with the port unless it is the
// scheme's default.
func (e *Endpoint) authority() string {
	if e.port == defaultPort(e.scheme) {
		if strings.IndexByte(e.hostname, ':') >= 0 {
			return "[" + e.hostname + "]"
		}
		return e.hostname
	}
	return net.JoinHostPort(e.hostname, strconv.Itoa(e.port))
}

// endpointSpec is one configured endpoint, parsed but not resolved.
type endpointSpec struct {
	scheme string
	host   string
	port   int
	weight int
}

func defaultPort(scheme string) int {
	switch scheme {
	case "https":
		return 443
	case "redis", "rediss":
		return 6379
	default:
		return 80
	}
}

// parseEndpoint reads "host:port", "host" or a URL. Without a scheme an
// endpoint speaks https when the cluster configures TLS, http otherwise
// (redis in a redis cluster). Without a port it uses the cluster's port,
// or the scheme's default. An explicit URL scheme always wins.
func parseEndpoint(ep v1alpha1.Endpoint, clusterType string, tlsOn bool, clusterPort int) (endpointSpec, error) {
	if ep.Weight < 0 {
		return endpointSpec{}, fmt.Errorf("endpoint %q: weight %d is negative", ep.Address, ep.Weight)
	}
	s := endpointSpec{weight: ep.Weight}
	raw := strings.TrimSpace(ep.Address)
	if raw == "" {
		return s, fmt.Errorf("endpoint address is empty (write host:port or a URL)")
	}
	portText := ""
	explicit := false
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return s, fmt.Errorf("endpoint %q: %v", ep.Address, err)
		}
		s.scheme = strings.ToLower(u.Scheme)
		if !schemeAllowed(clusterType, s.scheme) {
			return s, fmt.Errorf("endpoint %q: scheme %q is not usable in a %s cluster", ep.Address, u.Scheme, clusterType)
		}
		if u.User != nil {
			return s, fmt.Errorf("endpoint %q: credentials in the URL are not supported", redactURL(u))
		}
		s.host, portText = u.Hostname(), u.Port()
		explicit = true
	} else {
		h, p, err := net.SplitHostPort(raw)
		if err != nil {
			// No port: the whole string is the host (brackets allowed around IPv6).
			h = strings.TrimSuffix(strings.TrimPrefix(raw, "["), "]")
			p = ""
		}
		s.host, portText = h, p
	}
	if s.host == "" {
		return s, fmt.Errorf("endpoint %q: missing host", ep.Address)
	}
	if !explicit {
		switch {
		case clusterType == v1alpha1.ClusterRedis:
			s.scheme = "redis"
		case tlsOn:
			s.scheme = "https"
		default:
			s.scheme = "http"
		}
	}
	switch {
	case portText != "":
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return s, fmt.Errorf("endpoint %q: port %q is not a number in 1..65535", ep.Address, portText)
		}
		s.port = p
	case !explicit && clusterPort > 0:
		s.port = clusterPort
	default:
		s.port = defaultPort(s.scheme)
	}
	return s, nil
}

func schemeAllowed(clusterType, scheme string) bool {
	if clusterType == v1alpha1.ClusterRedis {
		return scheme == "redis" || scheme == "rediss"
	}
	return scheme == "http" || scheme == "https"
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

// endpointSet is an immutable snapshot of a cluster's endpoints; a DNS
// refresh swaps in a new one.
type endpointSet struct {
	list   []*Endpoint
	byAddr map[string]*Endpoint
}

func newEndpointSet(list []*Endpoint) *endpointSet {
	s := &endpointSet{list: list, byAddr: make(map[string]*Endpoint, len(list))}
	for _, e := range list {
		if _, dup := s.byAddr[e.address]; !dup {
			s.byAddr[e.address] = e
		}
	}
	return s
}

func (s *endpointSet) healthyCount() int {
	n := 0
	for _, e := range s.list {
		if e.Healthy() {
			n++
		}
	}
	return n
}

func (s *endpointSet) usableWeighted() int {
	n := 0
	for _, e := range s.list {
		if e.Healthy() && e.weight > 0 {
			n++
		}
	}
	return n
}
