package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timeouts of the admin listener. The admin API answers small requests from
// operators and scrapers; nothing on it should hold a connection for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * time.Minute // a reload that compiles plugins answers when done
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Options configure a [Server].
type Options struct {
	// Address is host:port to listen on; the caller has defaulted it
	// (127.0.0.1:9901). Port 0 picks a free port.
	Address string
	// BearerToken, when set, is required as "Authorization: Bearer <token>"
	// on every endpoint except GET /healthz. It is compared in constant time
	// and never logged.
	BearerToken string
	// Gatherer is served on GET /metrics in the Prometheus text format.
	// Nil: no /metrics endpoint.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for GET /readyz. Nil: always ready.
	Ready func() (ok bool, details []string)
	// ConfigDump returns the snapshot served as indented JSON on
	// GET /config_dump; it must already be redacted. Nil: no endpoint.
	ConfigDump func() any
	// Logger receives the server's own events; nil discards them.
	Logger *slog.Logger
}

// Server is the admin HTTP server. Its lifecycle is New → Handle (any
// number) → Start → Shutdown; Shutdown is safe without Start and more than
// once.
//
// All methods are safe for concurrent use. The functions in [Options] are
// called from request goroutines, possibly concurrently.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	srv  *http.Server

	mu    sync.Mutex
	state serverState
	ln    net.Listener
	done  chan struct{} // closed when Serve has returned
}

type serverState int

const (
	stateNew serverState = iota
	stateRunning
	stateStopped
)

// New builds a server from opts. It does not listen; see [Server.Start].
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, mux: http.NewServeMux()}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// Liveness is the one endpoint outside the token: probes rarely carry
	// credentials, and it tells nothing but "the process answers".
	s.mux.Handle("GET /healthz", http.HandlerFunc(healthz))
	s.Handle("GET /readyz", s.readyz())
	if opts.Gatherer != nil {
		s.Handle("GET /metrics", s.metrics())
	}
	if opts.ConfigDump != nil {
		s.Handle("GET /config_dump", s.configDump())
	}
	s.Handle("/", http.HandlerFunc(s.notFound))
	return s
}

// Handle adds an endpoint, with the same bearer-token check as the built-in
// ones. pattern is an http.ServeMux pattern ("POST /reload",
// "GET /plugins/{name}"); as with ServeMux, an invalid pattern or one that
// conflicts with a registered pattern panics. Call it before
// [Server.Start] so the endpoint exists from the first request.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.requireToken(h))
}

// Start listens on the configured address and serves in the background. It
// fails if the address is taken (the error names it), if the server is
// already running, or after [Server.Shutdown].
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return errors.New("admin: already started")
	case stateStopped:
		return errors.New("admin: cannot start after shutdown")
	}
	if s.opts.Address == "" {
		// net.Listen would pick every interface; never do that silently.
		return errors.New("admin: no listen address (want host:port, e.g. 127.0.0.1:9901)")
	}
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		if strings.Contains(err.Error(), s.opts.Address) {
			return fmt.Errorf("admin: %w", err) // net's error already names the address
		}
		return fmt.Errorf("admin: listen on %s: %w", s.opts.Address, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	s.state = stateRunning
	go s.serve(ln, s.done)
	s.log.Info("admin listening", "address", ln.Addr().String(), "auth", s.opts.BearerToken != "")
	return nil
}

func (s *Server) serve(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("admin server stopped", "address", ln.Addr().String(), "err", err)
	}
}

// Addr returns the address the server listens on: the actual one (with the
// chosen port) after [Server.Start], the configured one before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.opts.Address
}

// Shutdown stops accepting connections and waits for in-flight requests until
// ctx ends; then it closes the remaining connections and returns ctx's error.
// It is safe without Start and when called again (later calls return nil at
// once). A server that was shut down cannot be started again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	prev := s.state
	s.state = stateStopped
	done := s.done
	s.mu.Unlock()
	if prev != stateRunning {
		return nil
	}

	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close() // ctx ended first: drop what is left
		err = fmt.Errorf("admin: shutdown: %w", err)
	}
	<-done
	return err
}
