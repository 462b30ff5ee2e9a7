package pluginoci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Layouts Push can write.
const (
	// LayoutHigress is Higress's builder's: plugin.tar.gz holding
	// plugin.wasm, media type application/vnd.oci.image.layer.v1.tar+gzip,
	// config application/vnd.unknown.config.v1+json.
	LayoutHigress = "higress"
	// LayoutWasm is the Istio "oci" variant: the module itself as a
	// application/vnd.module.wasm.content.layer.v1+wasm layer, config
	// application/vnd.module.wasm.config.v1+json.
	LayoutWasm = "wasm"
)

// File is an extra layer of a Higress artifact (spec.yaml, README.md…).
type File struct {
	Name      string // the title annotation, e.g. "spec.yaml"
	MediaType string
	Data      []byte
}

// PushOptions shape an artifact.
type PushOptions struct {
	// Layout is LayoutHigress (default) or LayoutWasm.
	Layout string
	// Files are extra layers placed before the module (LayoutHigress
	// only).
	Files []File
	// Created is the org.opencontainers.image.created annotation; zero
	// means now.
	Created time.Time
}

// Push uploads wasm to ref (which must name a tag or a digest) and returns
// the manifest's descriptor.
func (c *Client) Push(ctx context.Context, wasm []byte, ref Ref, opts PushOptions) (ocispec.Descriptor, error) {
	repo, err := c.Repository(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var (
		layers []ocispec.Descriptor
		config ocispec.Descriptor
	)
	push := func(mediaType string, data []byte, title string) (ocispec.Descriptor, error) {
		d := content.NewDescriptorFromBytes(mediaType, data)
		if title != "" {
			d.Annotations = map[string]string{AnnotationTitle: title}
		}
		if err := repo.Push(ctx, d, bytes.NewReader(data)); err != nil && !isAlreadyExists(err) {
			return d, fmt.Errorf("pushing %s: %w", orDigest(title, d.Digest), err)
		}
		return d, nil
	}
	switch opts.Layout {
	case "", LayoutHigress:
		for _, f := range opts.Files {
			d, err := push(f.MediaType, f.Data, f.Name)
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			layers = append(layers, d)
		}
		tgz, err := HigressLayer(wasm)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		d, err := push(MediaTypeTarGzip, tgz, "plugin.tar.gz")
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		layers = append(layers, d)
		if config, err = push(MediaTypeUnknownConfig, []byte("{}"), ""); err != nil {
			return ocispec.Descriptor{}, err
		}
	case LayoutWasm:
		d, err := push(MediaTypeWasmLayer, wasm, PluginFile)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		layers = append(layers, d)
		if config, err = push(MediaTypeWasmConfig, []byte("{}"), ""); err != nil {
			return ocispec.Descriptor{}, err
		}
	default:
		return ocispec.Descriptor{}, fmt.Errorf("unknown layout %q (valid: %s, %s)", opts.Layout, LayoutHigress, LayoutWasm)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_0, "", oras.PackManifestOptions{
		Layers:              layers,
		ConfigDescriptor:    &config,
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the manifest: %w", err)
	}
	if ref.Tag != "" {
		if err := repo.Tag(ctx, desc, ref.Tag); err != nil {
			return desc, fmt.Errorf("tagging %s as %s: %w", desc.Digest, ref.Tag, err)
		}
	}
	return desc, nil
}

func isAlreadyExists(err error) bool { return err != nil && errors.Is(err, errdef.ErrAlreadyExists) }

func orDigest(title string, d digest.Digest) string {
	if title != "" {
		return title
	}
	return d.String()
}

// HigressLayer is plugin.tar.gz as Higress's builder makes it: a gzipped
// tar holding plugin.wasm. It is reproducible (fixed times and owner).
func HigressLayer(wasm []byte) ([]byte, error) {
	return TarLayer(wasm, true)
}

// TarLayer is a tar (gzipped when gz) holding plugin.wasm.
func TarLayer(wasm []byte, gz bool) ([]byte, error) {
	var buf bytes.Buffer
	var tw *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	h := &tar.Header{
		Name:     PluginFile,
		Mode:     0o644,
		Size:     int64(len(wasm)),
		Typeflag: tar.TypeReg,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(wasm); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
