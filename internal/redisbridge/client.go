package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const (
	defaultConnectTimeout = 5 * time.Second
	tcpKeepAlive          = 30 * time.Second
)

// clientKey identifies a client: calls that agree on it share one pool.
type clientKey struct {
	// server is the embedded store's key, or the cluster's endpoint
	// addresses in configured order, comma-separated.
	server   string
	embedded bool
	db       int
	// username and password are compared, never logged. Embedded clients
	// leave them empty: the embedded store has no users.
	username string
	password string
}

// client is one go-redis client and the references that keep it open.
// refs and busy are guarded by shared.mu; the client is closed once both
// are zero and it has left shared.clients.
type client struct {
	key  clientKey
	addr string // first endpoint, for logs; "embedded" for a store
	rdb  *redis.Client
	refs int // bindings using the client
	busy int // calls in flight
}

// redisOptions are the go-redis settings every client shares.
//
// Protocol 2: guests parse RESP2 replies (wasm-go uses tidwall/resp), and
// Envoy's client speaks RESP2, so RESP3-only reply types must never reach
// them. No retries: commands such as INCR and EVAL are not idempotent and
// the guest decides what a failure means. No socket timeouts of its own:
// each call's context carries the deadline its proxy_redis_init asked for.
// One dial attempt per call: the bridge's dialer already walks the
// endpoints, and a guest waiting on a dead server should hear so quickly.
func redisOptions() *redis.Options {
	return &redis.Options{
		Protocol:              2,
		MaxRetries:            -1,
		DialerRetries:         1,
		ReadTimeout:           -1,
		WriteTimeout:          -1,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// newRemoteClient builds a client for endpoints (host:port, at least one).
// It does no I/O: connections are dialled, authenticated and switched to
// the database on first use.
func newRemoteClient(key clientKey, endpoints []string, connect time.Duration) *client {
	opt := redisOptions()
	opt.Addr = endpoints[0]
	opt.Dialer = failoverDialer(endpoints, connect)
	// go-redis bounds a whole dial by DialTimeout; give every endpoint its
	// connect timeout. The call's own deadline still bounds the total.
	opt.DialTimeout = connect * time.Duration(len(endpoints))
	opt.Username, opt.Password, opt.DB = key.username, key.password, key.db
	return &client{key: key, addr: endpoints[0], rdb: redis.NewClient(opt)}
}

// failoverDialer dials the endpoints in configured order and returns the
// first connection that succeeds: the first endpoint is the server, the
// others are standbys. (Balancing across independent Redis servers would
// split counters and caches between them.) Each attempt is bounded by the
// cluster's connect timeout and by ctx. Redis endpoints are not health
// checked, so the order is the configured one.
func failoverDialer(endpoints []string, connect time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: connect, KeepAlive: tcpKeepAlive}
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var errs []error
		for _, ep := range endpoints {
			conn, err := d.DialContext(ctx, "tcp", ep)
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, fmt.Errorf("connect to redis %s: %w", strings.Join(endpoints, ", "), errors.Join(errs...))
	}
}

// newEmbeddedClient builds a client whose connections are in-memory pipes
// into the store.
func newEmbeddedClient(key clientKey, s *store) *client {
	opt := redisOptions()
	opt.Addr = "embedded"
	opt.Dialer = func(context.Context, string, string) (net.Conn, error) { return s.dial() }
	opt.DB = key.db
	return &client{key: key, addr: "embedded", rdb: redis.NewClient(opt)}
}
