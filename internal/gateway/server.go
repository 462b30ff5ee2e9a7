package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/telemetry"
)

// Options are the gateway's collaborators. Every field may be nil.
type Options struct {
	Logger     *slog.Logger
	Metrics    *telemetry.Metrics
	AccessLog  *telemetry.AccessLog
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	// Chain returns the filter chain for a stream; nil means no filters.
	Chain ChainProvider
}

// Generation is one immutable configuration in force: routes, clusters and
// the filter chain. In-flight requests keep the generation they started on.
type Generation struct {
	ID       uint64
	Snapshot *config.Snapshot
	Routes   *RouteTable
	Clusters *cluster.Registry
	Chain    ChainProvider

	maxBody int64
	reqTO   time.Duration

	// inflight counts the requests serving on this generation; once it
	// has been replaced (retired) and the count drops to zero, drained is
	// closed so the reloader can release what only this generation used.
	inflight atomic.Int64
	retired  atomic.Bool
	idleMu   sync.Mutex
	idle     chan struct{}
	idleDone bool
}

// Drained returns a channel closed once g has been replaced by Swap and
// its last in-flight request has finished.
func (g *Generation) Drained() <-chan struct{} {
	g.idleMu.Lock()
	defer g.idleMu.Unlock()
	if g.idle == nil {
		g.idle = make(chan struct{})
		if g.idleDone {
			close(g.idle)
		}
	}
	return g.idle
}

// InFlight is the number of requests serving on g.
func (g *Generation) InFlight() int64 { return g.inflight.Load() }

func (g *Generation) markIdle() {
	g.idleMu.Lock()
	defer g.idleMu.Unlock()
	if g.idleDone {
		return
	}
	g.idleDone = true
	if g.idle != nil {
		close(g.idle)
	}
}

func (g *Generation) release() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.markIdle()
	}
}

func (g *Generation) retire() {
	g.retired.Store(true)
	if g.inflight.Load() == 0 {
		g.markIdle()
	}
}

// NewGeneration builds routes and clusters for snap. The cluster registry
// is not started.
func NewGeneration(snap *config.Snapshot, copts cluster.Options, chain ChainProvider) (*Generation, error) {
	reg, err := cluster.NewRegistry(snap.Clusters, copts)
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	rt, err := NewRouteTable(snap.Routes, reg, config.RouteName)
	if err != nil {
		reg.Stop()
		return nil, fmt.Errorf("routes: %w", err)
	}
	g := &Generation{Snapshot: snap, Routes: rt, Clusters: reg, Chain: chain}
	g.maxBody = snap.Gateway.Spec.Limits.MaxRequestBodyBytes
	g.reqTO = snap.Gateway.Spec.Timeouts.Request.Duration
	return g, nil
}

// Server accepts client traffic on the configured listeners and proxies it.
// Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	logger *slog.Logger
	spec   v1alpha1.GatewaySpec
	gen    atomic.Pointer[Generation]
	nextID atomic.Uint64
	copts  cluster.Options

	mu        sync.Mutex
	started   bool
	stopped   bool
	servers   []*http.Server
	listeners []net.Listener
	addrs     map[string]string
	serveWG   sync.WaitGroup
}

// New builds a server for snap. Nothing listens until Start.
func New(snap *config.Snapshot, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, logger: opts.Logger, spec: snap.Gateway.Spec, addrs: map[string]string{}}
	copts := cluster.Options{Logger: opts.Logger}
	if opts.Metrics != nil {
		copts.OnHealthChange = opts.Metrics.SetEndpointHealth
	}
	s.copts = copts
	g, err := NewGeneration(snap, copts, opts.Chain)
	if err != nil {
		return nil, err
	}
	g.ID = s.nextID.Add(1)
	s.gen.Store(g)
	return s, nil
}

// Generation returns the generation in force.
func (s *Server) Generation() *Generation { return s.gen.Load() }

// NewGeneration builds a generation for snap with the server's cluster
// options (logger, endpoint health metrics). Its cluster registry is not
// started.
func (s *Server) NewGeneration(snap *config.Snapshot, chain ChainProvider) (*Generation, error) {
	return NewGeneration(snap, s.copts, chain)
}

// Swap installs g (its cluster registry must be started) and returns the
// previous generation, which the caller stops once drained (see
// Generation.Drained): requests keep the generation they started on.
func (s *Server) Swap(g *Generation) *Generation {
	g.ID = s.nextID.Add(1)
	old := s.gen.Swap(g)
	if old != nil {
		old.retire()
	}
	return old
}

// acquire pins a request to the generation in force. The second load
// closes the race with Swap: a request counted on a generation that was
// replaced meanwhile moves to the new one, so that once a retired
// generation's count reaches zero no request can still start on it.
func (s *Server) acquire() *Generation {
	for {
		g := s.gen.Load()
		g.inflight.Add(1)
		if s.gen.Load() == g {
			return g
		}
		g.release()
	}
}

// Start binds every listener and starts serving. On error, listeners opened
// so far are closed.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("gateway already started")
	}
	s.started = true
	for i, l := range s.spec.Listeners {
		srv, ln, err := s.listen(l)
		if err != nil {
			for _, o := range s.listeners {
				_ = o.Close()
			}
			s.listeners, s.servers = nil, nil
			return fmt.Errorf("listener %s (%s): %w", listenerName(l, i), l.Address, err)
		}
		s.servers = append(s.servers, srv)
		s.listeners = append(s.listeners, ln)
		s.addrs[listenerName(l, i)] = ln.Addr().String()
	}
	s.gen.Load().Clusters.Start(ctx)
	for i := range s.servers {
		srv, ln := s.servers[i], s.listeners[i]
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("listener stopped", "address", ln.Addr().String(), "error", err)
			}
		}()
	}
	return nil
}

func listenerName(l v1alpha1.Listener, i int) string {
	if l.Name != "" {
		return l.Name
	}
	return fmt.Sprintf("listener-%d", i)
}

func (s *Server) listen(l v1alpha1.Listener) (*http.Server, net.Listener, error) {
	h2 := l.HTTP2 == nil || *l.HTTP2
	name := l.Name
	srv := &http.Server{
		Handler:           s.handlerFor(name, l.TLS != nil),
		ReadHeaderTimeout: s.spec.Timeouts.ReadHeader.Duration,
		IdleTimeout:       s.spec.Timeouts.Idle.Duration,
		MaxHeaderBytes:    s.spec.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, nil, err
	}
	if l.TLS != nil {
		cert, err := tls.LoadX509KeyPair(l.TLS.CertFile, l.TLS.KeyFile)
		if err != nil {
			_ = ln.Close()
			return nil, nil, err
		}
		srv.Protocols.SetHTTP2(h2)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if h2 {
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		} else {
			srv.TLSConfig.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, srv.TLSConfig)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(h2)
	}
	return srv, ln, nil
}

// Addr returns the bound address of the named listener ("" if unknown).
func (s *Server) Addr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Addrs returns every listener's bound address by name.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.addrs))
	for k, v := range s.addrs {
		out[k] = v
	}
	return out
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends; then it closes what is left. Safe to call more than once
// and before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
				emu.Lock()
				errs = append(errs, fmt.Errorf("drain: %w", err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.serveWG.Wait()
	s.gen.Load().Clusters.Stop()
	return errors.Join(errs...)
}

// Ready reports whether the gateway serves traffic, with details if not.
func (s *Server) Ready() (bool, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.started:
		return false, []string{"gateway not started"}
	case s.stopped:
		return false, []string{"gateway shutting down"}
	}
	return true, nil
}

func (s *Server) handlerFor(listener string, tls bool) http.Handler {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, listener, scheme)
	})
}

// clientIP returns the host part of a remote address.
func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

func protoName(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "HTTP/2"
	}
	if r.ProtoMajor == 3 {
		return "HTTP/3"
	}
	return r.Proto
}

// prepareRequestHeaders removes hop-by-hop headers and sets the
// forwarding headers and request id. It returns the request id.
func prepareRequestHeaders(r *http.Request, scheme string) string {
	h := r.Header
	removeHopHeaders(h)
	ip := clientIP(r.RemoteAddr)
	if prior, ok := h["X-Forwarded-For"]; ok && len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
	} else {
		h["X-Forwarded-For"] = []string{ip}
	}
	h["X-Forwarded-Proto"] = []string{scheme}
	id := ""
	if v := h["X-Request-Id"]; len(v) > 0 && v[0] != "" {
		id = v[0]
	} else {
		id = newRequestID()
		h["X-Request-Id"] = []string{id}
	}
	return id
}
