package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// tlsServer is an HTTPS server with HTTP/2 that answers
// "<SNI>|<protocol>|<Accept-Encoding>", plus its CA certificate as a PEM file.
func tlsServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.TLS.ServerName, r.Proto, r.Header.Get("Accept-Encoding"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func TestTLSUpstream(t *testing.T) {
	srv, caFile := tlsServer(t)
	addr := addrOf(srv)
	_, port, _ := strings.Cut(addr, ":")
	tests := []struct {
		name    string
		spec    v1alpha1.ClusterSpec
		want    string // response body; "" means a TLS ConnectError
		wantErr string
	}{
		{
			name: "CA file, IP endpoint sends no SNI",
			spec: v1alpha1.ClusterSpec{Endpoints: endpoints(addr), TLS: &v1alpha1.UpstreamTLS{CAFile: caFile}},
			want: "|HTTP/2.0|",
		},
		{
			name: "CA file and SNI",
			spec: v1alpha1.ClusterSpec{Endpoints: endpoints(addr), TLS: &v1alpha1.UpstreamTLS{CAFile: caFile, SNI: "example.com"}},
			want: "example.com|HTTP/2.0|",
		},
		{
			name: "https URL turns TLS on without spec.tls",
			spec: v1alpha1.ClusterSpec{Endpoints: endpoints("https://127.0.0.1:" + port), TLS: nil},
			// System roots do not trust the test CA: proves TLS was attempted.
			wantErr: "certificate signed by unknown authority",
		},
		{
			name: "insecure skips verification",
			spec: v1alpha1.ClusterSpec{Endpoints: endpoints(addr), TLS: &v1alpha1.UpstreamTLS{InsecureSkipVerify: true, SNI: "anything.test"}},
			want: "anything.test|HTTP/2.0|",
		},
		{
			name: "https URL with CA file",
			spec: v1alpha1.ClusterSpec{Endpoints: endpoints("https://" + addr), TLS: &v1alpha1.UpstreamTLS{CAFile: caFile}},
			want: "|HTTP/2.0|",
		},
		{
			name:    "SNI not in the certificate",
			spec:    v1alpha1.ClusterSpec{Endpoints: endpoints(addr), TLS: &v1alpha1.UpstreamTLS{CAFile: caFile, SNI: "other.test"}},
			wantErr: "other.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := oneCluster(t, Options{}, tt.spec)
			body, ep, err := send(t, c, http.MethodGet, "", "")
			if tt.wantErr != "" {
				var ce *ConnectError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a ConnectError mentioning %q", err, tt.wantErr)
				}
				var verr *tls.CertificateVerificationError
				if !errors.As(err, &verr) {
					t.Errorf("the certificate error is not reachable through Unwrap: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			if body != tt.want || ep.Scheme() != "https" {
				t.Errorf("got %q over %s, want %q over https", body, ep.Scheme(), tt.want)
			}
		})
	}
}

func TestTLSDefaultSNIIsConfiguredHostname(t *testing.T) {
	// A dns cluster dials the resolved IP but sends the configured host
	// name as SNI. The test certificate does not cover "localhost", so
	// verification is off; the server reports the SNI it saw.
	srv, _ := tlsServer(t)
	_, port, _ := strings.Cut(addrOf(srv), ":")
	r := newTestRegistry(t, Options{}, clusterCfg("up", v1alpha1.ClusterSpec{
		Type:      v1alpha1.ClusterDNS,
		Endpoints: endpoints("localhost:" + port),
		TLS:       &v1alpha1.UpstreamTLS{InsecureSkipVerify: true},
	}))
	startRegistry(t, r)
	c, _ := r.Lookup("up")
	body, ep := mustSend(t, c, "127.0.0.1:"+port)
	if body != "localhost|HTTP/2.0|" || ep.Address() != "127.0.0.1:"+port {
		t.Errorf("got %q via %s, want SNI localhost via 127.0.0.1:%s", body, ep.Address(), port)
	}
}

func TestTransportPassesBytesThrough(t *testing.T) {
	var acceptEncoding atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acceptEncoding.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte("not really gzip"))
	}))
	t.Cleanup(srv.Close)
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(addrOf(srv))})
	body, _ := mustSend(t, c, "")
	if body != "not really gzip" {
		t.Errorf("body %q was altered", body)
	}
	if ae := acceptEncoding.Load(); ae != "" {
		t.Errorf("transport added Accept-Encoding %q", ae)
	}
	tr := c.transport
	if tr.Proxy != nil || tr.ResponseHeaderTimeout != 0 || tr.MaxIdleConnsPerHost < 1024 || !tr.ForceAttemptHTTP2 {
		t.Errorf("transport settings: proxy set %v, response header timeout %v, idle per host %d, h2 %v",
			tr.Proxy != nil, tr.ResponseHeaderTimeout, tr.MaxIdleConnsPerHost, tr.ForceAttemptHTTP2)
	}
}

func TestTLSConfigRoots(t *testing.T) {
	_, caFile := tlsServer(t)
	cfg, err := tlsConfig(&v1alpha1.UpstreamTLS{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || cfg.RootCAs.Equal(x509.NewCertPool()) {
		t.Error("CA file not loaded into RootCAs")
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.NextProtos[0] != "h2" {
		t.Errorf("MinVersion %x, NextProtos %v", cfg.MinVersion, cfg.NextProtos)
	}
}
