// Package ocitest runs an in-memory OCI registry for tests
// (go-containerregistry's registry on an httptest server), counting the
// requests it serves and optionally requiring basic authentication.
//
// It is test support only and must not be imported by production code.
package ocitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// Registry is a running registry.
type Registry struct {
	*httptest.Server
	// Host is host:port, for oci://Host/repo:tag URLs (plain HTTP: it is a
	// loopback address).
	Host string

	user, pass string
	mu         sync.Mutex
	counts     map[string]int
}

// Options configure a Registry.
type Options struct {
	// User and Password, when set, are required (basic auth) on every
	// request.
	User, Password string
}

// Start starts a registry, closed when the test ends.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	r := &Registry{user: opts.User, pass: opts.Password, counts: map[string]int{}}
	inner := registry.New(registry.Logger(nullLogger()))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != r.user || p != r.pass {
				r.count("unauthorized")
				w.Header().Set("WWW-Authenticate", `Basic realm="ocitest"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
		}
		switch {
		case strings.Contains(req.URL.Path, "/manifests/"):
			r.count("manifests")
		case strings.Contains(req.URL.Path, "/blobs/"):
			r.count("blobs")
		}
		r.count("total")
		inner.ServeHTTP(w, req)
	}))
	r.Host = strings.TrimPrefix(r.URL, "http://")
	t.Cleanup(r.Close)
	return r
}

func (r *Registry) count(k string) {
	r.mu.Lock()
	r.counts[k]++
	r.mu.Unlock()
}

// Count returns how many requests of a kind were served: "manifests",
// "blobs", "total" (authorised ones) or "unauthorized".
func (r *Registry) Count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[kind]
}

// Reset zeroes the counters.
func (r *Registry) Reset() {
	r.mu.Lock()
	r.counts = map[string]int{}
	r.mu.Unlock()
}

// DockerConfig writes a Docker config.json holding the registry's
// credentials to dir and returns its path.
func (r *Registry) DockerConfig(t testing.TB, dir string) string {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.pass))},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "docker-config.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func nullLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Blob is a config or layer of an image built by PushImage.
type Blob struct {
	MediaType string
	Data      []byte
	// Title, when set, is the layer's org.opencontainers.image.title.
	Title string
}

// PushImage pushes an image manifest of manifestType (OCI or Docker v2)
// with config and layers to repo:tag on the registry, bypassing
// authentication, and returns the manifest's digest.
func (r *Registry) PushImage(t testing.TB, repo, tag, manifestType string, config Blob, layers ...Blob) string {
	t.Helper()
	rp, err := remote.NewRepository(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	rp.PlainHTTP = true
	rp.Client = &auth.Client{Credential: auth.StaticCredential(r.Host, auth.Credential{Username: r.user, Password: r.pass})}
	ctx := context.Background()
	push := func(b Blob) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(b.MediaType, b.Data)
		if b.Title != "" {
			d.Annotations = map[string]string{"org.opencontainers.image.title": b.Title}
		}
		if err := rp.Push(ctx, d, bytes.NewReader(b.Data)); err != nil {
			t.Fatalf("pushing a %s blob: %v", b.MediaType, err)
		}
		return d
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": manifestType, "config": push(config)}
	ls := []ocispec.Descriptor{}
	for _, l := range layers {
		ls = append(ls, push(l))
	}
	m["layers"] = ls
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md := content.NewDescriptorFromBytes(manifestType, body)
	if err := rp.PushReference(ctx, md, bytes.NewReader(body), tag); err != nil {
		t.Fatalf("pushing the manifest: %v", err)
	}
	return md.Digest.String()
}
