// Command plainproxy is the baseline of the gateway benchmark: a plain
// single-host net/http/httputil.ReverseProxy with nothing added, configured
// like the reverse proxy measured in spec/anchors.md §6.1 (idle pool of 2048
// connections per host, immediate flushing, no compression).
//
// It forwards every path, /healthz included, to -upstream. It must stay
// plain: anything added here makes Sluice look better than it is. The one
// addition is correctness, not speed: HTTP/1 full duplex is enabled on every
// request, because without it a POST answered by an SSE stream is cut short
// now and then (golang/go#40747: about 5% of streams on this machine), and
// a baseline that drops streams is no baseline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on (host:port)")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000 (required)")
	flag.Parse()

	if err := run(*listen, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "plainproxy:", err)
		os.Exit(1)
	}
}

func run(listen, upstream string) error {
	target, err := parseUpstream(upstream)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler(newProxy(target)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(os.Stderr, "plainproxy: ", log.LstdFlags),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func parseUpstream(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("-upstream is required (e.g. http://127.0.0.1:9000)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("-upstream %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-upstream %q: want an http:// or https:// URL with a host", s)
	}
	return u, nil
}

// handler serves p with HTTP/1 full duplex on (see the package comment).
func handler(p http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Without full duplex, Go's HTTP/1 server drains and closes the
		// request body once the response headers are written; the
		// transport's last read of that body (checking it is no longer
		// than its Content-Length) then fails and it closes the upstream
		// connection mid-response (golang/go#40747).
		_ = http.NewResponseController(w).EnableFullDuplex()
		p.ServeHTTP(w, r)
	})
}

// newProxy returns the baseline proxy: httputil.NewSingleHostReverseProxy
// with a tuned transport and nothing else.
func newProxy(target *url.URL) *httputil.ReverseProxy {
	p := httputil.NewSingleHostReverseProxy(target)
	p.FlushInterval = -1
	p.Transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   2048,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
	return p
}
