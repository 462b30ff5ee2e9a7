package pluginserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugins"
	"github.com/sluicegw/sluice/internal/pluginserver"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pluginDir lays out two versioned plugins, one flat one and some noise.
func pluginDir(t *testing.T) (string, map[string][]byte) {
	dir := t.TempDir()
	mods := map[string][]byte{
		"/plugins/ai-proxy/1.0.0/plugin.wasm": []byte("\x00asm\x01\x00\x00\x00proxy-1"),
		"/plugins/ai-proxy/1.1.0/plugin.wasm": []byte("\x00asm\x01\x00\x00\x00proxy-11"),
		"/plugins/key-auth.wasm":              []byte("\x00asm\x01\x00\x00\x00key-auth"),
	}
	for p, b := range mods {
		write(t, filepath.Join(dir, strings.TrimPrefix(p, "/plugins/")), b)
	}
	write(t, filepath.Join(dir, "README.md"), []byte("not a plugin"))
	write(t, filepath.Join(dir, "ai-proxy", "1.0.0", "spec.yaml"), []byte("x"))
	write(t, filepath.Join(dir, ".hidden.wasm"), []byte("x"))
	write(t, filepath.Join(dir, "empty", "2.0.0", "other.wasm"), []byte("x"))
	return dir, mods
}

func newServer(t *testing.T, dir string) *httptest.Server {
	s, err := pluginserver.New(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestServeIndexJSON(t *testing.T) {
	dir, mods := pluginDir(t)
	ts := newServer(t, dir)
	resp, body := get(t, ts.URL+"/index.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var idx pluginserver.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	type row struct{ name, version, path string }
	want := []row{
		{"ai-proxy", "1.0.0", "/plugins/ai-proxy/1.0.0/plugin.wasm"},
		{"ai-proxy", "1.1.0", "/plugins/ai-proxy/1.1.0/plugin.wasm"},
		{"key-auth", "", "/plugins/key-auth.wasm"},
	}
	if len(idx.Plugins) != len(want) {
		t.Fatalf("index: %s", body)
	}
	for i, w := range want {
		p := idx.Plugins[i]
		if p.Name != w.name || p.Version != w.version || p.Path != w.path || p.URL != ts.URL+w.path {
			t.Errorf("plugin %d = %+v, want %+v", i, p, w)
		}
		if m := mods[w.path]; p.Size != int64(len(m)) || p.SHA256 != sum(m) {
			t.Errorf("%s: size %d sha256 %s", w.path, p.Size, p.SHA256)
		}
	}
	// An empty directory is an empty list, not null.
	_, body = get(t, newServer(t, t.TempDir()).URL+"/index.json")
	if !strings.Contains(string(body), `"plugins": []`) {
		t.Errorf("empty index: %s", body)
	}
}

func TestServeIndexHTML(t *testing.T) {
	dir, mods := pluginDir(t)
	ts := newServer(t, dir)
	resp, body := get(t, ts.URL+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for p, m := range mods {
		if !strings.Contains(string(body), `href="`+p+`"`) || !strings.Contains(string(body), sum(m)) {
			t.Errorf("HTML list lacks %s", p)
		}
	}
}

func TestServeModules(t *testing.T) {
	dir, mods := pluginDir(t)
	ts := newServer(t, dir)
	for p, m := range mods {
		resp, body := get(t, ts.URL+p)
		if resp.StatusCode != 200 || string(body) != string(m) {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
		if resp.Header.Get("Content-Type") != "application/wasm" || resp.Header.Get("X-Checksum-Sha256") != sum(m) || resp.Header.Get("ETag") != `"`+sum(m)+`"` {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
	}
	p := "/plugins/key-auth.wasm"
	resp, _ := get(t, ts.URL+p, "If-None-Match", `"`+sum(mods[p])+`"`)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d", resp.StatusCode)
	}
	resp, body := get(t, ts.URL+p, "Range", "bytes=0-3")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "\x00asm" {
		t.Errorf("range: %d %q", resp.StatusCode, body)
	}
	for _, bad := range []string{
		"/plugins/README.md", "/plugins/ai-proxy/1.0.0/spec.yaml", "/plugins/.hidden.wasm",
		"/plugins/../README.md", "/plugins/ai-proxy/9.9.9/plugin.wasm", "/plugins/empty/2.0.0/other.wasm", "/nothing",
	} {
		if resp, _ := get(t, ts.URL+bad); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", bad, resp.StatusCode)
		}
	}
	// Plugins added while serving are picked up; a replaced one gets its
	// new checksum.
	write(t, filepath.Join(dir, "late.wasm"), []byte("\x00asm\x01\x00\x00\x00late"))
	if resp, _ := get(t, ts.URL+"/plugins/late.wasm"); resp.StatusCode != 200 {
		t.Errorf("late plugin: %d", resp.StatusCode)
	}
	newer := []byte("\x00asm\x01\x00\x00\x00key-auth-v2-longer")
	write(t, filepath.Join(dir, "key-auth.wasm"), newer)
	if resp, _ := get(t, ts.URL+p); resp.Header.Get("X-Checksum-Sha256") != sum(newer) {
		t.Errorf("replaced plugin: checksum %s", resp.Header.Get("X-Checksum-Sha256"))
	}
}

func TestServeThroughFetcher(t *testing.T) {
	dir, mods := pluginDir(t)
	ts := newServer(t, dir)
	f := &plugins.Fetcher{CacheDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}
	for p, m := range mods {
		got, err := f.Fetch(context.Background(), ts.URL+p, sum(m), "", "")
		if err != nil || string(got) != string(m) {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	_, err := f.Fetch(context.Background(), ts.URL+"/plugins/absent.wasm", "", "", "")
	var se *plugins.HTTPStatusError
	if !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("absent plugin: %v", err)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	dir, _ := pluginDir(t)
	s, err := pluginserver.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A handler that is mid-response when shutdown starts.
	started, finish := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-finish
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- pluginserver.Serve(ctx, ln, mux, 10*time.Second) }()
	base := "http://" + ln.Addr().String()
	if resp, _ := get(t, base+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(finish)
	if got := <-slow; got != "done" {
		t.Errorf("in-flight request got %q", got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestNewRejectsNonDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, []byte("x"))
	if _, err := pluginserver.New(p, nil); err == nil {
		t.Error("a file was accepted")
	}
	if _, err := pluginserver.New(filepath.Join(p, "nope"), nil); err == nil {
		t.Error("a missing directory was accepted")
	}
}
