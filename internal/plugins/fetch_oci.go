package plugins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/pluginoci"
)

// fetchOCI pulls an oci:// module.
//
// IfNotPresent: a URL fetched before (same tag or digest) is served from
// the cache without contacting the registry. Always: the tag is resolved
// on every load (one manifest request); the layers are downloaded only
// when it moved. spec.sha256 may be the module's sha256 or the image
// manifest's digest (Istio's meaning).
func (f *Fetcher) fetchOCI(ctx context.Context, rawURL, wantSHA, pullPolicy, pullSecret string) ([]byte, error) {
	ref, err := pluginoci.ParseRef(rawURL)
	if err != nil {
		return nil, err
	}
	policy := defaultPullPolicy(pullPolicy, ref.Tag, ref.Digest)
	cache := f.cache()
	matches := func(e refEntry) bool {
		return wantSHA == "" || wantSHA == e.SHA256 || "sha256:"+wantSHA == e.Manifest || "sha256:"+wantSHA == e.Resolved
	}
	entry, haveEntry := cache.getRef(rawURL)
	if haveEntry && matches(entry) && policy == v1alpha1.PullIfNotPresent {
		if data, ok := cache.get(entry.SHA256); ok {
			f.logger().Debug("plugin cache hit", "url", rawURL, "image", entry.Manifest, "sha256", entry.SHA256)
			return data, nil
		}
	}
	if err := mayFetch(ctx); err != nil {
		return nil, err
	}
	client := &pluginoci.Client{
		HTTPClient:      f.httpClient(),
		CredentialsFile: f.secretFile(pullSecret),
		PlainHTTP:       f.plainHTTP,
		UserAgent:       "sluice-plugin-fetcher",
		MaxBytes:        f.maxBytes(),
	}
	var art *pluginoci.Artifact
	if haveEntry && matches(entry) {
		// Always, with a copy: re-resolve, download only if the tag moved.
		desc, err := client.Resolve(ctx, ref)
		if err != nil {
			return nil, f.ociError(rawURL, ref, pullSecret, err)
		}
		if desc.Digest.String() == entry.Resolved {
			if data, ok := cache.get(entry.SHA256); ok {
				f.logger().Debug("plugin tag unchanged; cache hit", "url", rawURL, "image", entry.Manifest)
				return data, nil
			}
		}
		if art, err = client.PullDescriptor(ctx, ref, desc); err != nil {
			return nil, f.ociError(rawURL, ref, pullSecret, err)
		}
	} else if art, err = client.Pull(ctx, ref); err != nil {
		return nil, f.ociError(rawURL, ref, pullSecret, err)
	}
	e := refEntry{URL: rawURL, Manifest: art.Manifest.Digest.String(), Resolved: art.Resolved.Digest.String()}
	e.SHA256 = sha256Hex(art.Wasm)
	if !matches(e) {
		return nil, &DigestMismatchError{URL: rawURL, Expected: wantSHA, Got: e.SHA256, Manifest: e.Manifest}
	}
	f.store(art.Wasm, &e)
	f.logger().Info("plugin pulled", "url", rawURL, "image", e.Manifest, "layer", art.Layer.MediaType,
		"bytes", len(art.Wasm), "sha256", e.SHA256[:12], "pull_policy", policy)
	return art.Wasm, nil
}

func (f *Fetcher) plainHTTP(registry string) bool {
	return pluginoci.IsLoopback(registry) || slices.Contains(f.PlainHTTPRegistries, registry)
}

// ociError names the URL and explains the common failures.
func (f *Fetcher) ociError(rawURL string, ref pluginoci.Ref, secret string, err error) error {
	if errors.Is(err, pluginoci.ErrNoWasmLayer) {
		return fmt.Errorf("%s: %w", rawURL, err)
	}
	authHint := func() string {
		if secret != "" {
			return "check the credentials for " + ref.Registry + " in " + secret
		}
		return "set spec.imagePullSecret to a Docker config.json holding credentials for " + ref.Registry
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%s: the registry requires credentials (%s): %w", rawURL, authHint(), err)
	}
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%s: not found in the registry: %w", rawURL, err)
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: the registry refused access (HTTP %d; %s): %w", rawURL, resp.StatusCode, authHint(), err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: not found in the registry (HTTP 404): %w", rawURL, err)
		}
		return fmt.Errorf("%s: registry answered HTTP %d: %w", rawURL, resp.StatusCode, err)
	}
	if ne := networkError("registry", rawURL, err); ne != err {
		return ne
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("%s: %w (a plain-HTTP registry that is not on loopback must be listed in the fetcher's plain-HTTP registries)", rawURL, err)
	}
	return fmt.Errorf("%s: %w", rawURL, err)
}
