package gateway

import (
	"context"
	"time"

	"github.com/sluicegw/sluice/internal/cluster"
)

// Stream is one request/response exchange as the filters see it: its
// identity, route, upstream choice and per-stream property store.
//
// A Stream is owned by its driver goroutine; filters reach it through their
// FilterHandle and must not keep it past OnDestroy.
type Stream struct {
	ctx       context.Context
	id        string
	start     time.Time
	listener  string
	scheme    string
	protocol  string
	client    string
	serverSNI string
	authority string // the request's host as received

	route        *Route
	cluster      *cluster.Cluster
	routeRecheck bool // recompute the route after header changes
	override     string
	upstreamHost string

	props   map[string][]byte
	details string

	reqHeaders, respHeaders   *Headers
	reqTrailers, respTrailers *Headers

	// bufferLimit is the per-direction limit for host-side buffering.
	bufferLimit [2]int64
	// respStarted is set once response headers went downstream.
	respStarted bool

	// rematch re-runs route matching on the current request headers.
	rematch func()
	// onLocalReply cancels upstream work when a local reply takes over.
	onLocalReply func()
}

// Context is cancelled when the client goes away or the stream ends.
func (s *Stream) Context() context.Context { return s.ctx }

// ID is the request id (x-request-id).
func (s *Stream) ID() string { return s.id }

// StartTime is when the request arrived.
func (s *Stream) StartTime() time.Time { return s.start }

// Listener names the listener that accepted the request.
func (s *Stream) Listener() string { return s.listener }

// Scheme is "http" or "https".
func (s *Stream) Scheme() string { return s.scheme }

// Protocol is "HTTP/1.1", "HTTP/2", …
func (s *Stream) Protocol() string { return s.protocol }

// ClientAddr is the downstream peer "ip:port".
func (s *Stream) ClientAddr() string { return s.client }

// ServerName is the TLS SNI the client sent, if any.
func (s *Stream) ServerName() string { return s.serverSNI }

// Route is the matched route, nil when none matched.
func (s *Stream) Route() *Route { return s.route }

// RouteName is the matched route's name ("" when none).
func (s *Stream) RouteName() string {
	if s.route == nil {
		return ""
	}
	return s.route.Name
}

// Cluster is the chosen upstream cluster, nil when none.
func (s *Stream) Cluster() *cluster.Cluster { return s.cluster }

// ClusterName is the Envoy-form name of the chosen cluster
// ("outbound|<port>||<name>"), "" when none.
func (s *Stream) ClusterName() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.EnvoyName()
}

// UpstreamHost is the endpoint the request went to ("" before that).
func (s *Stream) UpstreamHost() string { return s.upstreamHost }

// ResponseDetails is "via_upstream" for upstream responses, or the details
// of a local reply.
func (s *Stream) ResponseDetails() string { return s.details }

// Authority is the request's :authority as the client sent it; unlike
// RequestHeaders it is set before the filter chain is chosen.
func (s *Stream) Authority() string { return s.authority }

// RequestHeaders is the request header map (nil before it exists).
func (s *Stream) RequestHeaders() *Headers { return s.reqHeaders }

// ResponseHeaders is the response header map (nil before it exists).
func (s *Stream) ResponseHeaders() *Headers { return s.respHeaders }

// RequestTrailers returns the request trailers, nil when none.
func (s *Stream) RequestTrailers() *Headers { return s.reqTrailers }

// ResponseTrailers returns the response trailers, nil when none.
func (s *Stream) ResponseTrailers() *Headers { return s.respTrailers }

// Property reads the per-stream property store.
func (s *Stream) Property(key string) ([]byte, bool) {
	v, ok := s.props[key]
	return v, ok
}

// SetProperty writes the per-stream property store; a nil value deletes.
// The key "clear_route_cache" set to "off" disables route recomputation
// after header changes; any other value enables it (Higress semantics).
func (s *Stream) SetProperty(key string, value []byte) {
	if key == "clear_route_cache" {
		s.routeRecheck = string(value) != "off"
		return
	}
	if value == nil {
		delete(s.props, key)
		return
	}
	if s.props == nil {
		s.props = make(map[string][]byte, 4)
	}
	s.props[key] = append([]byte(nil), value...)
}

// SetRouteRecompute turns route recomputation after header changes on or off.
func (s *Stream) SetRouteRecompute(on bool) { s.routeRecheck = on }

// SetUpstreamOverride makes the request go to host ("host:port") when it is
// an endpoint of the chosen cluster, bypassing balancing.
func (s *Stream) SetUpstreamOverride(host string) { s.override = host }

// BufferLimit is the host-side buffering limit of a direction in bytes.
func (s *Stream) BufferLimit(d Direction) int64 { return s.bufferLimit[d] }

// SetBufferLimit changes the host-side buffering limit of a direction.
func (s *Stream) SetBufferLimit(d Direction, n int64) {
	if n > 0 {
		s.bufferLimit[d] = n
	}
}
