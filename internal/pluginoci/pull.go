package pluginoci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Artifact is a pulled module.
type Artifact struct {
	Wasm []byte
	// Manifest is the image manifest the module came from (after an index
	// was resolved); Resolved is what the reference itself resolved to
	// (the index, or the manifest).
	Manifest, Resolved ocispec.Descriptor
	// Layer is the layer holding the module.
	Layer ocispec.Descriptor
}

// Resolve returns the descriptor ref's tag or digest points at.
func (c *Client) Resolve(ctx context.Context, ref Ref) (ocispec.Descriptor, error) {
	repo, err := c.Repository(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return repo.Resolve(ctx, ref.Reference.Reference)
}

// Pull fetches ref's manifest and the module in it.
func (c *Client) Pull(ctx context.Context, ref Ref) (*Artifact, error) {
	repo, err := c.Repository(ref)
	if err != nil {
		return nil, err
	}
	desc, rc, err := repo.FetchReference(ctx, ref.Reference.Reference)
	if err != nil {
		return nil, err
	}
	body, err := readManifest(rc, desc)
	if err != nil {
		return nil, err
	}
	return c.pullFrom(ctx, repo, desc, body)
}

// PullDescriptor fetches the module of a manifest or index already
// resolved (by Resolve).
func (c *Client) PullDescriptor(ctx context.Context, ref Ref, desc ocispec.Descriptor) (*Artifact, error) {
	repo, err := c.Repository(ref)
	if err != nil {
		return nil, err
	}
	body, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return nil, err
	}
	return c.pullFrom(ctx, repo, desc, body)
}

func readManifest(rc io.ReadCloser, desc ocispec.Descriptor) ([]byte, error) {
	defer rc.Close()
	return content.ReadAll(rc, desc)
}

type manifestOrIndex struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

func (c *Client) pullFrom(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, body []byte) (*Artifact, error) {
	art := &Artifact{Resolved: desc, Manifest: desc}
	var m manifestOrIndex
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if isIndex(desc.MediaType, m) {
		child, ok := pickManifest(m.Manifests)
		if !ok {
			return nil, fmt.Errorf("image index %s lists no image manifest: %w", desc.Digest, ErrNoWasmLayer)
		}
		cb, err := content.FetchAll(ctx, repo, child)
		if err != nil {
			return nil, fmt.Errorf("manifest %s of index %s: %w", child.Digest, desc.Digest, err)
		}
		m = manifestOrIndex{}
		if err := json.Unmarshal(cb, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", child.Digest, err)
		}
		art.Manifest = child
	}
	wasm, layer, err := c.extract(ctx, repo, m.Layers)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", art.Manifest.Digest, err)
	}
	art.Wasm, art.Layer = wasm, layer
	return art, nil
}

func isIndex(mediaType string, m manifestOrIndex) bool {
	switch mediaType {
	case MediaTypeOCIIndex, MediaTypeDockerList:
		return true
	case MediaTypeOCIManifest, MediaTypeDockerImage:
		return false
	}
	return len(m.Manifests) > 0 && len(m.Layers) == 0
}

// pickManifest chooses the first manifest of an index that is not a build
// attestation, preferring a wasm platform.
func pickManifest(ms []ocispec.Descriptor) (ocispec.Descriptor, bool) {
	var first *ocispec.Descriptor
	for i := range ms {
		d := &ms[i]
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		if d.Platform != nil && (d.Platform.OS == "wasip1" || d.Platform.OS == "wasi" || d.Platform.Architecture == "wasm") {
			return *d, true
		}
		if first == nil {
			first = d
		}
	}
	if first == nil {
		return ocispec.Descriptor{}, false
	}
	return *first, true
}

func isRawWasm(mt string) bool { return mt == MediaTypeWasmLayer || mt == MediaTypeWasm }

func isTar(mt string) bool {
	switch mt {
	case MediaTypeTarGzip, MediaTypeTar, MediaTypeDockerLayer, MediaTypeDockerTar:
		return true
	}
	return false
}

// extract picks the module out of the layers (see the package comment).
func (c *Client) extract(ctx context.Context, repo *remote.Repository, layers []ocispec.Descriptor) ([]byte, ocispec.Descriptor, error) {
	max := c.maxBytes()
	for _, l := range layers {
		if !isRawWasm(l.MediaType) {
			continue
		}
		if l.Size > max {
			return nil, l, fmt.Errorf("wasm layer %s is %d bytes, over the %d-byte limit", l.Digest, l.Size, max)
		}
		b, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, l, fmt.Errorf("wasm layer %s: %w", l.Digest, err)
		}
		return b, l, nil
	}
	// Higress puts plugin.tar.gz last: look from the end.
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if !isTar(l.MediaType) {
			continue
		}
		if l.Size > max {
			return nil, l, fmt.Errorf("layer %s is %d bytes, over the %d-byte limit", l.Digest, l.Size, max)
		}
		b, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, l, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if isWasmBinary(b) {
			// `oras push x.wasm` without a media type labels the module
			// itself application/vnd.oci.image.layer.v1.tar.
			return b, l, nil
		}
		wasm, err := wasmFromTar(b, max)
		if err != nil {
			return nil, l, fmt.Errorf("layer %s (%s): %w", l.Digest, l.MediaType, err)
		}
		if wasm != nil {
			return wasm, l, nil
		}
	}
	// Last resort: a layer of another type whose file name says .wasm.
	for _, l := range layers {
		if isRawWasm(l.MediaType) || isTar(l.MediaType) || !strings.HasSuffix(l.Annotations[AnnotationTitle], ".wasm") || l.Size > max {
			continue
		}
		b, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return nil, l, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if isWasmBinary(b) {
			return b, l, nil
		}
	}
	var types []string
	for _, l := range layers {
		types = append(types, l.MediaType)
	}
	found := "it has no layers"
	if len(types) > 0 {
		found = "its layers are " + strings.Join(types, ", ")
	}
	return nil, ocispec.Descriptor{}, fmt.Errorf("%w: expected a %s layer or a tar layer holding %s; %s",
		ErrNoWasmLayer, MediaTypeWasmLayer, PluginFile, found)
}

// wasmFromTar returns plugin.wasm from a tar or tar.gz blob (or the only
// .wasm file if none is named so), nil when there is none.
func wasmFromTar(blob []byte, max int64) ([]byte, error) {
	var r io.Reader = bytes.NewReader(blob)
	if len(blob) >= 2 && blob[0] == 0x1f && blob[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var only []byte
	wasmFiles := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(h.Name)
		if base != PluginFile && !strings.HasSuffix(base, ".wasm") {
			continue
		}
		if h.Size > max {
			return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit", h.Name, h.Size, max)
		}
		b, err := io.ReadAll(io.LimitReader(tr, max))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
		if base == PluginFile {
			return b, nil
		}
		wasmFiles++
		only = b
	}
	if wasmFiles == 1 {
		return only, nil
	}
	return nil, nil
}

func isWasmBinary(b []byte) bool { return len(b) >= 8 && string(b[:4]) == "\x00asm" }
