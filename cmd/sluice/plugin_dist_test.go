package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/pluginoci/ocitest"
	"github.com/sluicegw/sluice/internal/plugins"
	"github.com/sluicegw/sluice/internal/pluginserver"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runSluice(ctx context.Context, stdout, stderr io.Writer, args ...string) error {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func TestPluginPushCommand(t *testing.T) {
	reg := ocitest.Start(t, ocitest.Options{User: "u", Password: "p"})
	cfg := reg.DockerConfig(t, t.TempDir())
	dir := t.TempDir()
	wasm := []byte("\x00asm\x01\x00\x00\x00pushed")
	file := filepath.Join(dir, "demo.wasm")
	spec := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(file, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, []byte("apiVersion: 1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"higress", []string{"--spec", spec}},
		{"wasm", []string{"--layout", "wasm", "--plain-http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "oci://" + reg.Host + "/plugins/demo:" + tc.name
			var out, errOut bytes.Buffer
			args := append([]string{"plugin", "push", file, url, "--registry-config", cfg}, tc.args...)
			if err := runSluice(context.Background(), &out, &errOut, args...); err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			digest := strings.TrimSpace(out.String())
			if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
				t.Fatalf("stdout %q is not a digest", out.String())
			}
			f := &plugins.Fetcher{CacheDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}
			for _, u := range []string{url, "oci://" + reg.Host + "/plugins/demo@" + digest} {
				got, err := f.Fetch(context.Background(), u, "", "", cfg)
				if err != nil || !bytes.Equal(got, wasm) {
					t.Errorf("%s: %q, %v", u, got, err)
				}
			}
		})
	}
	var errOut bytes.Buffer
	if err := runSluice(context.Background(), io.Discard, &errOut, "plugin", "push", file, "oci://"+reg.Host+"/plugins/demo:x"); err == nil ||
		!strings.Contains(err.Error(), "credential") {
		t.Errorf("push without credentials: %v", err)
	}
	if err := runSluice(context.Background(), io.Discard, io.Discard, "plugin", "push", spec, "oci://"+reg.Host+"/p:1"); err == nil ||
		!strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Errorf("push of a non-module: %v", err)
	}
	if err := runSluice(context.Background(), io.Discard, io.Discard, "plugin", "push", file, reg.Host+"/p:1"); err == nil ||
		!strings.Contains(err.Error(), "oci://") {
		t.Errorf("push without oci://: %v", err)
	}
}

func TestPluginServeCommand(t *testing.T) {
	dir := t.TempDir()
	wasm := []byte("\x00asm\x01\x00\x00\x00served")
	if err := os.MkdirAll(filepath.Join(dir, "demo", "2.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo", "2.0.0", "plugin.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- runSluice(ctx, out, io.Discard, "plugin", "serve", dir, "--listen", "127.0.0.1:0") }()
	re := regexp.MustCompile(`on (http://[^/]+)/`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %q", out.String())
		}
	}
	if !strings.Contains(out.String(), "serving 1 plugin(s)") {
		t.Errorf("banner %q", out.String())
	}
	resp, err := http.Get(base + "/index.json")
	if err != nil {
		t.Fatal(err)
	}
	var idx pluginserver.Index
	err = json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if err != nil || len(idx.Plugins) != 1 || idx.Plugins[0].Name != "demo" || idx.Plugins[0].Version != "2.0.0" {
		t.Fatalf("index %+v, %v", idx, err)
	}
	p := idx.Plugins[0]
	f := &plugins.Fetcher{CacheDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}
	got, err := f.Fetch(context.Background(), p.URL, p.SHA256, "", "")
	if err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("fetch %s: %q, %v", p.URL, got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
