package plugins

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/pluginoci"
	"github.com/sluicegw/sluice/internal/pluginoci/ocitest"
)

func pushModule(t *testing.T, ref string, wasm []byte, layout string) string {
	t.Helper()
	r, err := pluginoci.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := (&pluginoci.Client{}).Push(context.Background(), wasm, r, pluginoci.PushOptions{Layout: layout})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return desc.Digest.String()
}

func TestFetchOCIByTagAndDigestBothLayouts(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	for _, tc := range []struct {
		name, layout string
	}{
		{"higress", pluginoci.LayoutHigress},
		{"wasm-layer", pluginoci.LayoutWasm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := fakeModule("oci-" + tc.name)
			url := "oci://" + reg.Host + "/plugins/" + tc.name + ":1.0.0"
			digest := pushModule(t, url, mod, tc.layout)
			f := newTestFetcher(t)
			got, err := f.Fetch(context.Background(), url, "", "", "")
			if err != nil || string(got) != string(mod) {
				t.Fatalf("by tag: %q, %v", got, err)
			}
			byDigest := "oci://" + reg.Host + "/plugins/" + tc.name + "@" + digest
			got, err = newTestFetcher(t).Fetch(context.Background(), byDigest, "", "", "")
			if err != nil || string(got) != string(mod) {
				t.Fatalf("by digest: %q, %v", got, err)
			}
			// spec.sha256 may be the module's or the manifest's digest.
			for _, sum := range []string{sha256Hex(mod), strings.TrimPrefix(digest, "sha256:")} {
				if _, err := newTestFetcher(t).Fetch(context.Background(), url, sum, "", ""); err != nil {
					t.Errorf("sha256 %s: %v", sum, err)
				}
			}
		})
	}
}

func TestFetchOCIDockerImageLayout(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	mod := fakeModule("docker-image")
	for _, tc := range []struct {
		name, manifestType, configType, layerType string
		gz                                        bool
	}{
		{"docker", pluginoci.MediaTypeDockerImage, pluginoci.MediaTypeDockerConfig, pluginoci.MediaTypeDockerLayer, true},
		{"oci-tar", pluginoci.MediaTypeOCIManifest, "application/vnd.oci.image.config.v1+json", pluginoci.MediaTypeTar, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer, err := pluginoci.TarLayer(mod, tc.gz)
			if err != nil {
				t.Fatal(err)
			}
			reg.PushImage(t, "images/"+tc.name, "v1", tc.manifestType,
				ocitest.Blob{MediaType: tc.configType, Data: []byte(`{"architecture":"wasm","os":"wasip1","rootfs":{"type":"layers"}}`)},
				ocitest.Blob{MediaType: tc.layerType, Data: layer})
			got, err := newTestFetcher(t).Fetch(context.Background(), "oci://"+reg.Host+"/images/"+tc.name+":v1", sha256Hex(mod), "", "")
			if err != nil || string(got) != string(mod) {
				t.Fatalf("%q, %v", got, err)
			}
		})
	}
}

func TestFetchOCIMissingWasmLayer(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	reg.PushImage(t, "plugins/docs-only", "1.0.0", pluginoci.MediaTypeOCIManifest,
		ocitest.Blob{MediaType: pluginoci.MediaTypeUnknownConfig, Data: []byte("{}")},
		ocitest.Blob{MediaType: pluginoci.MediaTypeHigressSpec, Data: []byte("apiVersion: 1.0.0\n")},
		ocitest.Blob{MediaType: pluginoci.MediaTypeHigressReadme, Data: []byte("# docs\n")})
	url := "oci://" + reg.Host + "/plugins/docs-only:1.0.0"
	_, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", "")
	if !errors.Is(err, pluginoci.ErrNoWasmLayer) {
		t.Fatalf("err = %v, want ErrNoWasmLayer", err)
	}
	for _, s := range []string{url, "no wasm layer", pluginoci.MediaTypeWasmLayer, "plugin.wasm", pluginoci.MediaTypeHigressSpec} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	// Nor is a tar layer without a module.
	reg.PushImage(t, "plugins/empty-tar", "1.0.0", pluginoci.MediaTypeOCIManifest,
		ocitest.Blob{MediaType: pluginoci.MediaTypeUnknownConfig, Data: []byte("{}")},
		ocitest.Blob{MediaType: pluginoci.MediaTypeTarGzip, Data: emptyTarGz(t)})
	if _, err := newTestFetcher(t).Fetch(context.Background(), "oci://"+reg.Host+"/plugins/empty-tar:1.0.0", "", "", ""); !errors.Is(err, pluginoci.ErrNoWasmLayer) {
		t.Fatalf("tar without plugin.wasm: err = %v", err)
	}
}

func TestFetchOCIUnreachableRegistry(t *testing.T) {
	url := "oci://" + closedAddr(t) + "/plugins/x:1.0.0"
	_, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", "")
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), url+": registry unreachable") {
		t.Fatalf("err = %v, want an UnreachableError naming the URL", err)
	}
}

func TestFetchOCINotFound(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	url := "oci://" + reg.Host + "/plugins/nothing:1.0.0"
	_, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", "")
	if err == nil || !strings.Contains(err.Error(), url+": not found in the registry") {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchOCIDigestMismatch(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	mod := fakeModule("oci-mismatch")
	url := "oci://" + reg.Host + "/plugins/m:1.0.0"
	digest := pushModule(t, url, mod, "")
	want := strings.Repeat("cd", 32)
	_, err := newTestFetcher(t).Fetch(context.Background(), url, want, "", "")
	var dm *DigestMismatchError
	if !errors.As(err, &dm) {
		t.Fatalf("err = %v, want a DigestMismatchError", err)
	}
	for _, s := range []string{url, "expects " + want, "got " + sha256Hex(mod), digest} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestFetchOCIPullSecret(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{User: "alice", Password: "s3cret"})
	mod := fakeModule("private")
	url := "oci://" + reg.Host + "/private/p:1.0.0"
	r, _ := pluginoci.ParseRef(url)
	secret := reg.DockerConfig(t, t.TempDir())
	if _, err := (&pluginoci.Client{CredentialsFile: secret}).Push(context.Background(), mod, r, pluginoci.PushOptions{}); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}

	_, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", "")
	if err == nil || !strings.Contains(err.Error(), "the registry requires credentials") || !strings.Contains(err.Error(), "imagePullSecret") {
		t.Fatalf("without a secret: err = %v", err)
	}
	got, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", secret)
	if err != nil || string(got) != string(mod) {
		t.Fatalf("with the secret: %q, %v", got, err)
	}
	// Wrong credentials are refused by the registry.
	bad := filepath.Join(t.TempDir(), "config.json")
	cfg := `{"auths":{"` + reg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("alice:wrong")) + `"}}}`
	if err := os.WriteFile(bad, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = newTestFetcher(t).Fetch(context.Background(), url, "", "", bad)
	if err == nil || !strings.Contains(err.Error(), "the registry refused access (HTTP 401; check the credentials for "+reg.Host+" in "+bad) {
		t.Fatalf("wrong credentials: err = %v", err)
	}
	// A secret that is not a file is ignored (pull anonymously), as config
	// validation warns.
	if _, err := newTestFetcher(t).Fetch(context.Background(), url, "", "", "my-k8s-secret"); err == nil {
		t.Fatal("a missing secret file gave access")
	}
}

func TestFetchOCIPullPolicy(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	ctx := context.Background()
	url := "oci://" + reg.Host + "/plugins/policy:1.0.0"
	v1, v2 := fakeModule("policy-v1"), fakeModule("policy-v2")
	pushModule(t, url, v1, "")

	t.Run("IfNotPresent", func(t *testing.T) {
		f := newTestFetcher(t)
		if got, err := f.Fetch(ctx, url, "", v1alpha1.PullIfNotPresent, ""); err != nil || string(got) != string(v1) {
			t.Fatalf("%q, %v", got, err)
		}
		reg.Reset()
		if got, err := f.Fetch(ctx, url, "", v1alpha1.PullIfNotPresent, ""); err != nil || string(got) != string(v1) {
			t.Fatalf("%q, %v", got, err)
		}
		if n := reg.Count("total"); n != 0 {
			t.Errorf("IfNotPresent with a cached tag made %d requests, want 0", n)
		}
		// Even when the tag moves, the cached copy stays.
		pushModule(t, url, v2, "")
		reg.Reset()
		if got, _ := f.Fetch(ctx, url, "", v1alpha1.PullIfNotPresent, ""); string(got) != string(v1) {
			t.Errorf("IfNotPresent re-pulled a moved tag")
		}
		pushModule(t, url, v1, "")
	})

	t.Run("Always", func(t *testing.T) {
		f := newTestFetcher(t)
		if _, err := f.Fetch(ctx, url, "", v1alpha1.PullAlways, ""); err != nil {
			t.Fatal(err)
		}
		reg.Reset()
		if got, err := f.Fetch(ctx, url, "", v1alpha1.PullAlways, ""); err != nil || string(got) != string(v1) {
			t.Fatalf("%q, %v", got, err)
		}
		if reg.Count("manifests") == 0 {
			t.Error("Always did not re-resolve the tag")
		}
		if n := reg.Count("blobs"); n != 0 {
			t.Errorf("Always downloaded %d blobs for an unchanged tag, want 0", n)
		}
		pushModule(t, url, v2, "")
		reg.Reset()
		if got, err := f.Fetch(ctx, url, "", v1alpha1.PullAlways, ""); err != nil || string(got) != string(v2) {
			t.Fatalf("after the tag moved: %q, %v", got, err)
		}
		if reg.Count("blobs") == 0 {
			t.Error("Always did not download the moved tag")
		}
	})

	t.Run("default", func(t *testing.T) {
		// Higress's default: Always for :latest, IfNotPresent otherwise.
		latest := "oci://" + reg.Host + "/plugins/policy"
		pushModule(t, latest+":latest", v1, "")
		f := newTestFetcher(t)
		for _, u := range []string{latest, url} {
			if _, err := f.Fetch(ctx, u, "", "", ""); err != nil {
				t.Fatal(err)
			}
		}
		reg.Reset()
		if _, err := f.Fetch(ctx, latest, "", v1alpha1.PullUnspecified, ""); err != nil {
			t.Fatal(err)
		}
		if reg.Count("manifests") == 0 {
			t.Error(":latest was not re-resolved")
		}
		reg.Reset()
		if _, err := f.Fetch(ctx, url, "", "", ""); err != nil {
			t.Fatal(err)
		}
		if n := reg.Count("total"); n != 0 {
			t.Errorf("a fixed tag made %d requests, want 0", n)
		}
	})

	t.Run("digest-pinned", func(t *testing.T) {
		digest := pushModule(t, url, v1, "")
		pinned := "oci://" + reg.Host + "/plugins/policy@" + digest
		f := newTestFetcher(t)
		if _, err := f.Fetch(ctx, pinned, "", v1alpha1.PullIfNotPresent, ""); err != nil {
			t.Fatal(err)
		}
		reg.Reset()
		if got, err := f.Fetch(ctx, pinned, "", "", ""); err != nil || string(got) != string(v1) {
			t.Fatalf("%q, %v", got, err)
		}
		if n := reg.Count("total"); n != 0 {
			t.Errorf("a digest-pinned image made %d requests, want 0", n)
		}
	})
}

func TestFetchOCIRegistryDownUsesCacheIfNotPresent(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{})
	mod := fakeModule("survives")
	url := "oci://" + reg.Host + "/plugins/s:2.0.0"
	pushModule(t, url, mod, "")
	f := newTestFetcher(t)
	if _, err := f.Fetch(context.Background(), url, "", "", ""); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	f2 := &Fetcher{CacheDir: f.CacheDir, Logger: fetchTestLogger()}
	if got, err := f2.Fetch(context.Background(), url, "", "", ""); err != nil || string(got) != string(mod) {
		t.Fatalf("restart with the registry down: %q, %v", got, err)
	}
	if _, err := f2.Fetch(context.Background(), url, "", v1alpha1.PullAlways, ""); err == nil {
		t.Fatal("Always with the registry down succeeded")
	}
}

func emptyTarGz(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi"))
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFetchOCIRegistryTimeout: a registry that accepts connections but never
// answers fails the fetch after the fetch timeout, naming the URL.
func TestFetchOCIRegistryTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := newTestFetcher(t)
	f.Timeout = 200 * time.Millisecond
	url := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/plugins/slow:1.0.0"
	_, err := f.Fetch(context.Background(), url, "", "", "")
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("err = %v, want an UnreachableError for the timeout naming the URL", err)
	}
}
