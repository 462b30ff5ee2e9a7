package pluginoci_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/sluicegw/sluice/internal/pluginoci"
	"github.com/sluicegw/sluice/internal/pluginoci/ocitest"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in                             string
		registry, repo, tag, dig, want string
	}{
		{"oci://ghcr.io/org/plugin:1.0.0", "ghcr.io", "org/plugin", "1.0.0", "", "1.0.0"},
		{"ghcr.io/org/plugin", "ghcr.io", "org/plugin", "latest", "", "latest"},
		{"oci://localhost:5000/p:v2", "localhost:5000", "p", "v2", "", "v2"},
		{"oci://localhost:5000/p", "localhost:5000", "p", "latest", "", "latest"},
		{"oci://reg.io/a/b:1@sha256:" + sixtyFour, "reg.io", "a/b", "1", "sha256:" + sixtyFour, "sha256:" + sixtyFour},
		{"oci://reg.io/a/b@sha256:" + sixtyFour, "reg.io", "a/b", "", "sha256:" + sixtyFour, "sha256:" + sixtyFour},
		{"oci://docker.io/nginx:1", "registry-1.docker.io", "library/nginx", "1", "", "1"},
	} {
		r, err := pluginoci.ParseRef(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if r.Registry != tc.registry || r.Repository != tc.repo || r.Tag != tc.tag || r.Digest != tc.dig || r.Reference.Reference != tc.want {
			t.Errorf("%s: got %+v", tc.in, r)
		}
	}
	for _, bad := range []string{"oci://", "oci://reg.io/UPPER:1", "oci://reg.io/a@sha256:short"} {
		if _, err := pluginoci.ParseRef(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestIsLoopback(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:1": true, "[::1]:5000": true, "127.0.0.1": true,
		"ghcr.io": false, "10.0.0.1:5000": false,
	} {
		if got := pluginoci.IsLoopback(h); got != want {
			t.Errorf("IsLoopback(%q) = %v", h, got)
		}
	}
}

// TestPushHigressLayout checks the artifact against what Higress's builder
// (oras push … plugin.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip)
// produces.
func TestPushHigressLayout(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	wasm := []byte("\x00asm\x01\x00\x00\x00higress")
	ref, err := pluginoci.ParseRef("oci://" + reg.Host + "/plugins/demo:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	c := &pluginoci.Client{}
	ctx := context.Background()
	desc, err := c.Push(ctx, wasm, ref, pluginoci.PushOptions{Files: []pluginoci.File{
		{Name: "spec.yaml", MediaType: pluginoci.MediaTypeHigressSpec, Data: []byte("apiVersion: 1.0.0\n")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("manifest media type %s", desc.MediaType)
	}
	repo, err := c.Repository(ref)
	if err != nil {
		t.Fatal(err)
	}
	body, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != pluginoci.MediaTypeUnknownConfig || m.Config.Size != 2 {
		t.Errorf("config %+v, want %s {}", m.Config, pluginoci.MediaTypeUnknownConfig)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("layers %+v", m.Layers)
	}
	if l := m.Layers[0]; l.MediaType != pluginoci.MediaTypeHigressSpec || l.Annotations[pluginoci.AnnotationTitle] != "spec.yaml" {
		t.Errorf("first layer %+v", l)
	}
	last := m.Layers[1]
	if last.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" || last.Annotations[pluginoci.AnnotationTitle] != "plugin.tar.gz" {
		t.Errorf("last layer %+v", last)
	}
	if m.Annotations[ocispec.AnnotationCreated] == "" {
		t.Error("no created annotation")
	}
	tgz, err := content.FetchAll(ctx, repo, last)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(tr)
	if h.Name != "plugin.wasm" || !bytes.Equal(got, wasm) {
		t.Errorf("tar holds %s = %q", h.Name, got)
	}
	// Reproducible layer.
	again, _ := pluginoci.HigressLayer(wasm)
	if !bytes.Equal(again, tgz) {
		t.Error("HigressLayer is not reproducible")
	}

	art, err := c.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(art.Wasm, wasm) || art.Manifest.Digest != desc.Digest || art.Layer.Digest != last.Digest {
		t.Errorf("pull: %+v", art)
	}
}

func TestPullIndex(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	wasm := []byte("\x00asm\x01\x00\x00\x00indexed")
	ref, _ := pluginoci.ParseRef("oci://" + reg.Host + "/plugins/idx:child")
	c := &pluginoci.Client{}
	ctx := context.Background()
	child, err := c.Push(ctx, wasm, ref, pluginoci.PushOptions{Layout: pluginoci.LayoutWasm})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := c.Repository(ref)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{child}}
	idx.SchemaVersion = 2
	body, _ := json.Marshal(idx)
	idesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, body)
	if err := repo.PushReference(ctx, idesc, bytes.NewReader(body), "multi"); err != nil {
		t.Fatal(err)
	}
	iref, _ := pluginoci.ParseRef("oci://" + reg.Host + "/plugins/idx:multi")
	art, err := c.Pull(ctx, iref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(art.Wasm, wasm) || art.Resolved.Digest != idesc.Digest || art.Manifest.Digest != child.Digest {
		t.Errorf("pull through an index: resolved %s manifest %s", art.Resolved.Digest, art.Manifest.Digest)
	}
}

// TestPullOrasDefaults covers modules pushed with plain `oras push`: without a
// media type oras labels a file application/vnd.oci.image.layer.v1.tar, and
// other tools use arbitrary types with a .wasm title.
func TestPullOrasDefaults(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	wasm := []byte("\x00asm\x01\x00\x00\x00oras-default")
	c := &pluginoci.Client{}
	for tag, layer := range map[string]ocitest.Blob{
		"tar-typed":  {MediaType: "application/vnd.oci.image.layer.v1.tar", Data: wasm, Title: "plugin.wasm"},
		"odd-type":   {MediaType: "application/octet-stream", Data: wasm, Title: "filter.wasm"},
		"empty-conf": {MediaType: pluginoci.MediaTypeWasmLayer, Data: wasm},
	} {
		reg.PushImage(t, "oras/p", tag, ocispec.MediaTypeImageManifest,
			ocitest.Blob{MediaType: "application/vnd.oci.empty.v1+json", Data: []byte("{}")}, layer)
		ref, _ := pluginoci.ParseRef("oci://" + reg.Host + "/oras/p:" + tag)
		art, err := c.Pull(context.Background(), ref)
		if err != nil || !bytes.Equal(art.Wasm, wasm) {
			t.Errorf("%s: %v", tag, err)
		}
	}
}
