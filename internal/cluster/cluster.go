package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

const defaultDNSRefresh = 30 * time.Second

// Cluster is a named set of upstream endpoints with its balancing policy,
// health checks and transport.
//
// A Cluster is safe for concurrent use. Its identity and settings never
// change; its endpoint list is an immutable snapshot swapped atomically by
// the DNS refresher, and endpoint health flips atomically.
type Cluster struct {
	name      string
	namespace string
	envoyName string
	typ       string
	port      int
	spec      *v1alpha1.ClusterSpec
	retries   int

	configured []endpointSpec
	endpoints  atomic.Pointer[endpointSet]
	balancer   balancer
	health     *healthPolicy // nil: no active health check
	dnsRefresh time.Duration
	connect    time.Duration // bounds a dial plus TLS handshake, and a DNS lookup
	transport  *http.Transport
	rt         http.RoundTripper // transport, swapped by tests
	log        *slog.Logger
	onHealth   func(cluster, endpoint string, healthy bool)
	lookupIP   func(ctx context.Context, host string) ([]string, error)

	mu       sync.Mutex      // guards the fields below and endpoint swaps
	run      context.Context // nil until started
	wg       *sync.WaitGroup // the Registry's, counts checkers and refreshers
	checkers map[*Endpoint]context.CancelFunc
}

func newCluster(cfg *v1alpha1.Cluster, opts Options, log *slog.Logger) (*Cluster, error) {
	spec := cfg.Spec // shallow copy: slices stay shared with the config, which is read-only
	c := &Cluster{
		name:      cfg.Metadata.Name,
		namespace: cfg.Metadata.Namespace,
		typ:       spec.Type,
		spec:      &spec,
		onHealth:  opts.OnHealthChange,
		lookupIP:  lookupIP,
		checkers:  make(map[*Endpoint]context.CancelFunc),
	}
	if c.typ == "" {
		c.typ = v1alpha1.ClusterStatic
	}
	c.log = log.With("cluster", c.displayName())
	var errs []error
	switch c.typ {
	case v1alpha1.ClusterStatic, v1alpha1.ClusterDNS, v1alpha1.ClusterRedis:
	default:
		errs = append(errs, fmt.Errorf("spec.type: unknown type %q (use static, dns or redis)", spec.Type))
	}
	if len(spec.Endpoints) == 0 && !(c.typ == v1alpha1.ClusterRedis && spec.Redis != nil && spec.Redis.Embedded) {
		errs = append(errs, errors.New("spec.endpoints: at least one endpoint is required"))
	}
	if spec.Port < 0 || spec.Port > 65535 {
		errs = append(errs, fmt.Errorf("spec.port: %d is not in 1..65535", spec.Port))
	}
	tlsOn := spec.TLS != nil
	for i, ep := range spec.Endpoints {
		s, err := parseEndpoint(ep, c.typ, tlsOn, spec.Port)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.endpoints[%d]: %w", i, err))
			continue
		}
		c.configured = append(c.configured, s)
	}
	c.port = spec.Port
	if c.port == 0 && len(c.configured) > 0 {
		c.port = c.configured[0].port
	}
	c.envoyName = "outbound|" + strconv.Itoa(c.port) + "||" + c.name

	if spec.Retries != nil {
		if spec.Retries.ConnectFailure < 0 {
			errs = append(errs, fmt.Errorf("spec.retries.connectFailure: %d is negative", spec.Retries.ConnectFailure))
		}
		c.retries = max(spec.Retries.ConnectFailure, 0)
	}
	if c.typ != v1alpha1.ClusterRedis {
		b, err := newBalancer(spec.Balancing)
		if err != nil {
			errs = append(errs, err)
		}
		c.balancer = b
		if spec.HealthCheck != nil {
			c.health = newHealthPolicy(spec.HealthCheck)
		}
	}
	c.dnsRefresh = spec.DNSRefresh.Duration
	if c.dnsRefresh <= 0 {
		c.dnsRefresh = defaultDNSRefresh
	}
	c.connect = spec.ConnectTimeout.Duration
	if c.connect <= 0 {
		c.connect = defaultConnect
	}
	t, err := newTransport(c.spec, c.connect, c.hostnameOf)
	if err != nil {
		errs = append(errs, err)
	}
	c.transport, c.rt = t, t
	if len(errs) > 0 {
		for i, err := range errs {
			errs[i] = fmt.Errorf("%s: %w", resourceRef(c.namespace, c.name), err)
		}
		return nil, errors.Join(errs...)
	}

	list := make([]*Endpoint, 0, len(c.configured))
	for _, s := range c.configured {
		list = append(list, newEndpoint(s, s.host))
	}
	c.endpoints.Store(newEndpointSet(list))
	return c, nil
}

// Name is the cluster's metadata.name, the name plugins use.
func (c *Cluster) Name() string { return c.name }

// Namespace is the cluster's metadata.namespace ("" when unset).
func (c *Cluster) Namespace() string { return c.namespace }

// Port is the port in the cluster's Envoy-style names.
func (c *Cluster) Port() int { return c.port }

// Type is static, dns or redis.
func (c *Cluster) Type() string { return c.typ }

// Spec is the cluster's configuration. Callers must not modify it.
func (c *Cluster) Spec() *v1alpha1.ClusterSpec { return c.spec }

// Redis is the redis options of a redis cluster (nil when unset).
func (c *Cluster) Redis() *v1alpha1.RedisOptions { return c.spec.Redis }

// EnvoyName is "outbound|<port>||<name>", what the cluster_name property
// shows and what Lookup resolves fastest.
func (c *Cluster) EnvoyName() string { return c.envoyName }

// Endpoints returns the current endpoints in configured (for dns:
// resolved) order. The slice is the caller's; the endpoints are shared.
func (c *Cluster) Endpoints() []*Endpoint {
	return append([]*Endpoint(nil), c.endpoints.Load().list...)
}

// displayName is "namespace/name" when a namespace is set.
func (c *Cluster) displayName() string { return displayName(c.namespace, c.name) }

// hostnameOf is the configured host of the endpoint dialled as addr, ""
// when addr is no current endpoint.
func (c *Cluster) hostnameOf(addr string) string {
	if e := c.endpoints.Load().byAddr[addr]; e != nil {
		return e.hostname
	}
	return ""
}

// start reports every endpoint's initial (healthy) state and starts the
// health checkers and, for dns, the refresher. Goroutines are counted in
// wg and end when ctx is cancelled.
func (c *Cluster) start(ctx context.Context, wg *sync.WaitGroup) {
	if c.typ == v1alpha1.ClusterRedis {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.run, c.wg = ctx, wg
	for _, e := range c.endpoints.Load().list {
		c.added(e)
	}
	if c.typ == v1alpha1.ClusterDNS {
		wg.Go(func() { c.refreshLoop(ctx) })
	}
}

// added reports a new endpoint as healthy and starts its checker. c.mu is
// held and the cluster is running.
func (c *Cluster) added(e *Endpoint) {
	if c.onHealth != nil {
		c.onHealth(c.name, e.address, e.Healthy())
	}
	if c.health == nil {
		return
	}
	ctx, cancel := context.WithCancel(c.run)
	c.checkers[e] = cancel
	c.wg.Go(func() { c.checkLoop(ctx, e) })
}

// setEndpoints swaps in a new endpoint list: checkers of removed endpoints
// stop, new endpoints are reported and checked. Endpoints kept from the
// old list keep their health and in-flight state.
func (c *Cluster) setEndpoints(list []*Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.endpoints.Load()
	next := newEndpointSet(list)
	c.endpoints.Store(next)
	for _, e := range old.list {
		if next.byAddr[e.address] == e {
			continue
		}
		if cancel, ok := c.checkers[e]; ok {
			cancel()
			delete(c.checkers, e)
		}
	}
	if c.run == nil || c.run.Err() != nil {
		return
	}
	for _, e := range list {
		if old.byAddr[e.address] != e {
			c.added(e)
		}
	}
}

// stop forgets the checkers (their context is already cancelled) and
// closes idle connections.
func (c *Cluster) stop() {
	c.mu.Lock()
	for e, cancel := range c.checkers {
		cancel()
		delete(c.checkers, e)
	}
	c.mu.Unlock()
	c.transport.CloseIdleConnections()
}
