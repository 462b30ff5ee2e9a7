// Package pluginoci moves Proxy-Wasm plugins in and out of OCI registries
// in the layouts Higress and Istio use, through oras-go.
//
// Pull accepts, in this order of preference:
//
//   - a layer of media type application/vnd.module.wasm.content.layer.v1+wasm
//     (or application/wasm) holding the module itself (the Istio "oci"
//     variant, what `oras push x.wasm:application/vnd.module.wasm.content.layer.v1+wasm` makes);
//   - a tar layer, gzipped or not, OCI or Docker media type, holding
//     plugin.wasm (Higress's builder: plugin.tar.gz as the last layer, next
//     to spec.yaml and README.md; also `FROM scratch` + `COPY x.wasm
//     plugin.wasm` Docker images, the Istio "compat" variant);
//   - a bare module under another media type: a "tar" layer that is really
//     the module (`oras push x.wasm` without a type), or any layer whose
//     title annotation ends in .wasm.
//
// An image index (manifest list) is resolved to its first manifest that is
// not a build attestation.
//
// Push writes the Higress layout: an OCI image manifest whose config is
// application/vnd.unknown.config.v1+json "{}" (what oras 1.0, inside
// Higress's builder, writes), optional spec.yaml/README layers, and
// plugin.tar.gz (application/vnd.oci.image.layer.v1.tar+gzip) holding
// plugin.wasm as the last layer; LayoutWasm writes the Istio "oci" variant
// instead.
package pluginoci

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// Media types.
const (
	// MediaTypeWasmLayer is a layer holding the module itself.
	MediaTypeWasmLayer = "application/vnd.module.wasm.content.layer.v1+wasm"
	// MediaTypeWasm is the IANA type, accepted like MediaTypeWasmLayer.
	MediaTypeWasm = "application/wasm"
	// MediaTypeWasmConfig is the config of the Istio "oci" variant.
	MediaTypeWasmConfig = "application/vnd.module.wasm.config.v1+json"
	// MediaTypeUnknownConfig is oras's default config, which Higress's
	// builder (oras push) writes.
	MediaTypeUnknownConfig = "application/vnd.unknown.config.v1+json"

	MediaTypeTarGzip       = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeTar           = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeDockerLayer   = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerTar     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerConfig  = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerImage   = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex      = "application/vnd.oci.image.index.v1+json"
	MediaTypeHigressSpec   = "application/vnd.module.wasm.spec.v1+yaml"
	MediaTypeHigressReadme = "application/vnd.module.wasm.doc.v1+markdown"
	MediaTypeHigressIcon   = "application/vnd.module.wasm.icon.v1+png"

	// AnnotationTitle names a layer's file (what oras push sets).
	AnnotationTitle = "org.opencontainers.image.title"

	// PluginFile is the module's name inside a tar layer.
	PluginFile = "plugin.wasm"
)

// DefaultMaxModuleBytes bounds a module (and a layer) when Client.MaxBytes
// is 0.
const DefaultMaxModuleBytes = 256 << 20

// Client talks to registries. The zero value pulls anonymously over HTTPS
// (plain HTTP for loopback registries) with http.DefaultClient.
type Client struct {
	// HTTPClient is the transport; nil means http.DefaultClient.
	HTTPClient *http.Client
	// CredentialsFile is a Docker config.json (auths, credsStore and
	// credHelpers are honoured); "" pulls anonymously.
	CredentialsFile string
	// PlainHTTP reports whether a registry (host[:port]) is spoken to over
	// plain HTTP. nil means: loopback hosts only.
	PlainHTTP func(registry string) bool
	// UserAgent is sent with every request; "" means oras's default.
	UserAgent string
	// MaxBytes bounds a module and the layer holding it; 0 means
	// DefaultMaxModuleBytes.
	MaxBytes int64
}

// Ref is a parsed oci:// reference.
type Ref struct {
	registry.Reference
	// Tag and Digest are what the URL names; either may be empty (then
	// the tag is "latest").
	Tag, Digest string
}

// ParseRef parses "oci://registry/repo[:tag][@sha256:hex]" (the scheme is
// optional). docker.io is spoken to at registry-1.docker.io and one-word
// Docker Hub repositories get library/.
func ParseRef(raw string) (Ref, error) {
	s := strings.TrimPrefix(raw, "oci://")
	if s == "" {
		return Ref{}, fmt.Errorf("%q: empty OCI reference", raw)
	}
	name, dig, hasDigest := strings.Cut(s, "@")
	var tag string
	last := name[strings.LastIndexByte(name, '/')+1:]
	if i := strings.LastIndexByte(last, ':'); i >= 0 && strings.Contains(name, "/") {
		tag = last[i+1:]
		name = name[:len(name)-len(last)+i]
	}
	ref := name
	switch {
	case hasDigest:
		ref += "@" + dig
	case tag != "":
		ref += ":" + tag
	}
	r, err := registry.ParseReference(ref)
	if err != nil {
		return Ref{}, fmt.Errorf("%q is not a valid OCI reference: %w", raw, err)
	}
	if r.Registry == "docker.io" || r.Registry == "index.docker.io" {
		r.Registry = "registry-1.docker.io"
		if !strings.Contains(r.Repository, "/") {
			r.Repository = "library/" + r.Repository
		}
	}
	out := Ref{Reference: r, Tag: tag}
	if hasDigest {
		out.Digest = dig
	} else if tag == "" {
		out.Tag = "latest"
		out.Reference.Reference = "latest"
	}
	return out, nil
}

// String is registry/repository followed by :tag and/or @digest.
func (r Ref) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

func (c *Client) maxBytes() int64 {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultMaxModuleBytes
}

// Repository returns an oras repository for ref with c's transport and
// credentials.
func (c *Client) Repository(ref Ref) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, err
	}
	ac := &auth.Client{Client: c.HTTPClient, Cache: auth.NewCache()}
	if c.UserAgent != "" {
		ac.SetUserAgent(c.UserAgent)
	}
	if c.CredentialsFile != "" {
		if _, err := os.Stat(c.CredentialsFile); err != nil {
			return nil, fmt.Errorf("registry credentials: %w", err)
		}
		store, err := credentials.NewStore(c.CredentialsFile, credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("registry credentials %s: %w", c.CredentialsFile, err)
		}
		ac.Credential = credentials.Credential(store)
	}
	repo.Client = ac
	plain := c.PlainHTTP
	if plain == nil {
		plain = IsLoopback
	}
	repo.PlainHTTP = plain(ref.Registry)
	return repo, nil
}

// IsLoopback reports whether a registry host[:port] is localhost or a
// loopback address.
func IsLoopback(reg string) bool {
	host := reg
	if h, _, err := net.SplitHostPort(reg); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNoWasmLayer is returned (wrapped) when an image holds no module.
var ErrNoWasmLayer = errors.New("no wasm layer")
