package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSignedCert writes a certificate for 127.0.0.1 and localhost and its
// key into dir; it returns both paths and a pool trusting the certificate.
func selfSignedCert(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice-e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

const bigBody = 10 << 20

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLargeBodies moves 10 MiB each way over HTTP/1.1, h2c and h2 over TLS,
// checking every byte by SHA-256.
func TestLargeBodies(t *testing.T) {
	download := make([]byte, bigBody)
	if _, err := rand.Read(download); err != nil {
		t.Fatal(err)
	}
	downloadSHA := sha(download)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %d %s", hex.EncodeToString(h.Sum(nil)), n, r.Header.Get("X-Forwarded-Proto"))
		case "/download":
			w.Header().Set("Content-Length", strconv.Itoa(len(download)))
			_, _ = w.Write(download)
		case "/download-chunked":
			// No Content-Length: the body is framed by the protocol.
			for p := download; len(p) > 0; p = p[min(len(p), 1<<20):] {
				_, _ = w.Write(p[:min(len(p), 1<<20)])
				http.NewResponseController(w).Flush()
			}
		}
	}))
	t.Cleanup(up.Close)

	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	g := startGateway(t, gwConfig{
		Listeners: fmt.Sprintf(`[{name: main, address: "127.0.0.1:0"}, {name: tls, address: "127.0.0.1:0", tls: {certFile: %q, keyFile: %q}}]`, certFile, keyFile),
		Docs: []string{
			clusterDoc("up", []string{up.Listener.Addr().String()}),
			routeDoc("up", "cluster: up"),
		},
	})

	h1 := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
	h1.Protocols.SetHTTP1(true)
	h2c := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	h2tls := &http.Transport{
		Protocols:          new(http.Protocols),
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{RootCAs: pool, ServerName: "localhost"},
	}
	h2tls.Protocols.SetHTTP1(true)
	h2tls.Protocols.SetHTTP2(true)
	for _, tr := range []*http.Transport{h1, h2c, h2tls} {
		t.Cleanup(tr.CloseIdleConnections)
	}
	cases := []struct {
		name      string
		base      string
		transport *http.Transport
		protoMaj  int
		scheme    string
	}{
		{"HTTP/1.1", "http://" + g.addr("main"), h1, 1, "http"},
		{"h2c", "http://" + g.addr("main"), h2c, 2, "http"},
		{"h2 over TLS", "https://" + g.addr("tls"), h2tls, 2, "https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := &http.Client{Transport: c.transport}

			t.Run("upload", func(t *testing.T) {
				payload := make([]byte, bigBody)
				if _, err := rand.Read(payload); err != nil {
					t.Fatal(err)
				}
				resp, err := client.Post(c.base+"/upload", "application/octet-stream", bytes.NewReader(payload))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
				if resp.ProtoMajor != c.protoMaj {
					t.Errorf("client spoke %s, want HTTP/%d", resp.Proto, c.protoMaj)
				}
				want := fmt.Sprintf("%s %d %s", sha(payload), bigBody, c.scheme)
				if string(got) != want {
					t.Errorf("upstream saw %q, want %q (sha256 length x-forwarded-proto)", got, want)
				}
			})
			for _, path := range []string{"/download", "/download-chunked"} {
				t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
					resp, err := client.Get(c.base + path)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d", resp.StatusCode)
					}
					if resp.ProtoMajor != c.protoMaj {
						t.Errorf("client spoke %s, want HTTP/%d", resp.Proto, c.protoMaj)
					}
					h := sha256.New()
					n, err := io.Copy(h, resp.Body)
					if err != nil {
						t.Fatalf("reading body after %d bytes: %v", n, err)
					}
					if n != bigBody || hex.EncodeToString(h.Sum(nil)) != downloadSHA {
						t.Errorf("downloaded %d bytes with sha256 %x, want %d bytes with %s", n, h.Sum(nil), bigBody, downloadSHA)
					}
				})
			}
		})
	}
}

// TestManyUploads sends many small uploads with Content-Length over
// keep-alive connections, from a few clients at once, and checks each body
// and its access log byte count.
func TestManyUploads(t *testing.T) {
	up := newEchoUpstream(t, "up")
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.addr()}),
		routeDoc("up", "cluster: up"),
	}})
	const clients, perClient = 4, 150
	errs := make(chan error, clients*perClient)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				payload := bytes.Repeat([]byte{byte('a' + c)}, 512+i)
				id := fmt.Sprintf("up-%d-%d", c, i)
				req, _ := http.NewRequest(http.MethodPost, g.url("/u"), bytes.NewReader(payload))
				req.Header.Set("X-Request-Id", id)
				resp, err := g.client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				var s seenRequest
				if err := json.Unmarshal(body, &s); err != nil || s.BodyBytes != int64(len(payload)) || s.BodySHA != sha(payload) {
					errs <- fmt.Errorf("%s: upstream saw %d bytes (sha %s), want %d (%v)", id, s.BodyBytes, s.BodySHA, len(payload), err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, "every upload logged", func() bool { return len(g.accessEntries()) == clients*perClient })
	for _, e := range g.accessEntries() {
		var c, i int
		fmt.Sscanf(e.RequestID, "up-%d-%d", &c, &i)
		if e.BytesIn != int64(512+i) {
			t.Errorf("%s: access log bytes_in %d, want %d", e.RequestID, e.BytesIn, 512+i)
		}
	}
}
