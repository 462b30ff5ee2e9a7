package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Transport settings shared by every cluster.
const (
	maxIdleConnsPerHost = 1024
	idleConnTimeout     = 90 * time.Second
	tcpKeepAlive        = 30 * time.Second
	defaultConnect      = 5 * time.Second
)

// dialer opens connections to a cluster's endpoints. Both of its dial
// functions return *ConnectError on failure, so a connect failure stays
// recognisable after http.Transport hands it back; that is also why TLS is
// done here (DialTLSContext) and not by http.Transport.
type dialer struct {
	net     net.Dialer
	timeout time.Duration // bounds dial plus TLS handshake
	tls     *tls.Config   // base config; ServerName is set per connection
	sni     string        // configured SNI, "" means the endpoint's host
	// hostname maps a dialled "host:port" to the endpoint's configured host
	// (the default SNI of a dns cluster's IP endpoints).
	hostname func(addr string) string
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &ConnectError{Endpoint: addr, Err: err}
	}
	return conn, nil
}

func (d *dialer) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	raw, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &ConnectError{Endpoint: addr, Err: err}
	}
	cfg := d.tls.Clone()
	cfg.ServerName = d.serverName(addr)
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &ConnectError{Endpoint: addr, Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return conn, nil
}

// serverName is the SNI (and verified name) for addr: the configured SNI,
// else the endpoint's configured host. An IP sends no SNI and is verified
// against the certificate's IP addresses.
func (d *dialer) serverName(addr string) string {
	if d.sni != "" {
		return d.sni
	}
	if h := d.hostname(addr); h != "" {
		return h
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// newTransport builds the cluster's HTTP transport. It never reads proxy
// settings from the environment, never asks for compression (the gateway
// passes bytes through), and sets no response-header timeout (the gateway
// applies the route's).
func newTransport(spec *v1alpha1.ClusterSpec, timeout time.Duration, hostname func(addr string) string) (*http.Transport, error) {
	base, err := tlsConfig(spec.TLS)
	if err != nil {
		return nil, err
	}
	d := &dialer{
		net:      net.Dialer{KeepAlive: tcpKeepAlive},
		timeout:  timeout,
		tls:      base,
		hostname: hostname,
	}
	if spec.TLS != nil {
		d.sni = spec.TLS.SNI
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.dial,
		DialTLSContext:        d.dialTLS,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		DisableCompression:    true,
		TLSHandshakeTimeout:   timeout,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// tlsConfig is the base client config: ALPN offers h2 then HTTP/1.1, the
// roots are the system's unless a CA file is given.
func tlsConfig(t *v1alpha1.UpstreamTLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if t == nil {
		return cfg, nil
	}
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("spec.tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("spec.tls.caFile: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
