package plugins

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeModule is not a valid module, which the fetcher does not care about.
func fakeModule(tag string) []byte { return append([]byte("\x00asm\x01\x00\x00\x00"), tag...) }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// moduleServer serves one module at /m.wasm; status, when non-zero,
// overrides the answer.
type moduleServer struct {
	*httptest.Server
	data     []byte
	status   atomic.Int32
	requests atomic.Int32
}

func newModuleServer(t *testing.T, data []byte) *moduleServer {
	s := &moduleServer{data: data}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if code := s.status.Load(); code != 0 {
			http.Error(w, "nope", int(code))
			return
		}
		if r.URL.Path != "/m.wasm" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(s.data)
	}))
	t.Cleanup(s.Close)
	return s
}

func newTestFetcher(t *testing.T) *Fetcher {
	return &Fetcher{CacheDir: t.TempDir(), Logger: fetchTestLogger()}
}

func TestFetchHTTPSHA256OK(t *testing.T) {
	mod := fakeModule("http-ok")
	srv := newModuleServer(t, mod)
	f := newTestFetcher(t)
	got, err := f.Fetch(context.Background(), srv.URL+"/m.wasm", sha256Hex(mod), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(mod) {
		t.Fatalf("got %q", got)
	}
	if _, err := os.Stat(filepath.Join(f.CacheDir, "sha256", sha256Hex(mod)+".wasm")); err != nil {
		t.Errorf("module not cached: %v", err)
	}
	// Upper-case digests are accepted.
	if _, err := f.Fetch(context.Background(), srv.URL+"/m.wasm", strings.ToUpper(sha256Hex(mod)), "", ""); err != nil {
		t.Fatal(err)
	}
}

func TestFetchHTTPSHA256MismatchRefused(t *testing.T) {
	mod := fakeModule("http-mismatch")
	srv := newModuleServer(t, mod)
	f := newTestFetcher(t)
	want := strings.Repeat("ab", 32)
	_, err := f.Fetch(context.Background(), srv.URL+"/m.wasm", want, "", "")
	var dm *DigestMismatchError
	if !errors.As(err, &dm) {
		t.Fatalf("err = %v, want a DigestMismatchError", err)
	}
	for _, s := range []string{"sha256 mismatch", srv.URL + "/m.wasm", "expects " + want, "got " + sha256Hex(mod)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := os.Stat(filepath.Join(f.CacheDir, "sha256", sha256Hex(mod)+".wasm")); err == nil {
		t.Error("a refused module was cached")
	}
}

func TestFetchHTTPNotFound(t *testing.T) {
	srv := newModuleServer(t, fakeModule("x"))
	f := newTestFetcher(t)
	_, err := f.Fetch(context.Background(), srv.URL+"/missing.wasm", "", "", "")
	var se *HTTPStatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("err = %v, want an HTTPStatusError 404", err)
	}
	if want := "GET " + srv.URL + "/missing.wasm: server answered HTTP 404 Not Found"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestFetchHTTPServerDown(t *testing.T) {
	f := newTestFetcher(t)
	u := "http://" + closedAddr(t) + "/m.wasm"
	_, err := f.Fetch(context.Background(), u, "", "", "")
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want an UnreachableError", err)
	}
	if !strings.Contains(err.Error(), u+": server unreachable") {
		t.Errorf("error %q", err)
	}
}

func TestFetchHTTPTimeout(t *testing.T) {
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
	f.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := f.Fetch(context.Background(), srv.URL+"/m.wasm", "", "", "")
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("err = %v, want an UnreachableError for the timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestFetchHTTPNegativeCacheAndBackoff(t *testing.T) {
	mod := fakeModule("backoff")
	srv := newModuleServer(t, mod)
	srv.status.Store(http.StatusServiceUnavailable)
	clock := newFakeClock()
	f := newTestFetcher(t)
	f.Now = clock.Now
	f.BackoffInitial, f.BackoffMax = 10*time.Second, 25*time.Second
	u := srv.URL + "/m.wasm"
	ctx := context.Background()

	// First failure: one request, 10s back-off.
	if _, err := f.Fetch(ctx, u, "", "", ""); err == nil {
		t.Fatal("want an error")
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}
	// Within the back-off: refused without a request, naming the last error.
	clock.Advance(9 * time.Second)
	_, err := f.Fetch(ctx, u, "", "", "")
	var be *BackoffError
	if !errors.As(err, &be) || be.Failures != 1 {
		t.Fatalf("err = %v, want a BackoffError after 1 failure", err)
	}
	var se *HTTPStatusError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "not retried before") {
		t.Errorf("error %q should carry the last failure and the retry time", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests = %d during the back-off, want 1", n)
	}
	// After it: retried; fails again, the back-off doubles (20s).
	clock.Advance(2 * time.Second)
	if _, err := f.Fetch(ctx, u, "", "", ""); err == nil || errors.As(err, &be) {
		t.Fatalf("err = %v, want a fresh failure", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2", n)
	}
	clock.Advance(15 * time.Second)
	if _, err := f.Fetch(ctx, u, "", "", ""); !errors.As(err, &be) || be.Failures != 2 {
		t.Fatalf("err = %v, want a BackoffError after 2 failures (back-off grew past 15s)", err)
	}
	// A different sha256 is a different source: not held by the back-off.
	if _, err := f.Fetch(ctx, u, sha256Hex(mod), "", ""); errors.As(err, &be) {
		t.Fatalf("err = %v: another source was held back", err)
	}
	srv.status.Store(0)
	clock.Advance(6 * time.Second)
	got, err := f.Fetch(ctx, u, "", "", "")
	if err != nil || string(got) != string(mod) {
		t.Fatalf("after the back-off: %q, %v", got, err)
	}
	// Success forgets the failures.
	srv.status.Store(http.StatusInternalServerError)
	if _, err := f.Fetch(ctx, u, "", "", ""); err == nil {
		t.Fatal("want an error")
	}
	clock.Advance(10*time.Second + time.Millisecond)
	before := srv.requests.Load()
	_, _ = f.Fetch(ctx, u, "", "", "")
	if srv.requests.Load() != before+1 {
		t.Error("the back-off did not restart from its initial value after a success")
	}
}

func TestBackoffGrowth(t *testing.T) {
	f := &Fetcher{BackoffInitial: time.Second, BackoffMax: 10 * time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, f.backoff(n))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff = %v, want %v seconds", got, want)
		}
	}
	if d := (&Fetcher{}).backoff(1); d != DefaultBackoffInitial {
		t.Errorf("default initial back-off = %s", d)
	}
}

func TestFetchHTTPCacheHitAvoidsRefetch(t *testing.T) {
	mod := fakeModule("cache-hit")
	srv := newModuleServer(t, mod)
	f := newTestFetcher(t)
	u, sum := srv.URL+"/m.wasm", sha256Hex(mod)
	for i := 0; i < 3; i++ {
		if _, err := f.Fetch(context.Background(), u, sum, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("requests = %d, want 1", n)
	}
	// Another fetcher (a restarted gateway) on the same directory, with
	// the server gone.
	srv.Close()
	f2 := &Fetcher{CacheDir: f.CacheDir, Logger: fetchTestLogger()}
	got, err := f2.Fetch(context.Background(), u, sum, "", "")
	if err != nil || string(got) != string(mod) {
		t.Fatalf("from the disk cache: %q, %v", got, err)
	}
	// A corrupted cache entry is not served.
	p := filepath.Join(f.CacheDir, "sha256", sum+".wasm")
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Fetch(context.Background(), u, sum, "", ""); err == nil {
		t.Fatal("a corrupted cache entry was served")
	}
	// Without a sha256 there is nothing to look up: always downloaded.
	srv2 := newModuleServer(t, mod)
	for i := 0; i < 2; i++ {
		if _, err := f.Fetch(context.Background(), srv2.URL+"/m.wasm", "", "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv2.requests.Load(); n != 2 {
		t.Errorf("requests without sha256 = %d, want 2", n)
	}
}

func TestFetchConcurrentSharesOneDownload(t *testing.T) {
	mod := fakeModule("single-flight")
	gate := make(chan struct{})
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		<-gate
		_, _ = w.Write(mod)
	}))
	defer srv.Close()
	f := newTestFetcher(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Fetch(context.Background(), srv.URL+"/m.wasm", sha256Hex(mod), "", "")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestFetchLocalSources(t *testing.T) {
	mod := fakeModule("file")
	p := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(p, mod, 0o644); err != nil {
		t.Fatal(err)
	}
	var f *Fetcher // nil uses the shared default
	got, err := f.Fetch(context.Background(), "file://"+p, sha256Hex(mod), "", "")
	if err != nil || string(got) != string(mod) {
		t.Fatalf("file://: %q, %v", got, err)
	}
	if _, err := f.Fetch(context.Background(), "file://"+p, strings.Repeat("0", 64), "", ""); err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("err = %v", err)
	}
	if _, err := f.Fetch(context.Background(), "ftp://x/y.wasm", "", "", ""); err == nil || !strings.Contains(err.Error(), `unsupported scheme "ftp"`) {
		t.Fatalf("err = %v", err)
	}
}

func fetchTestLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
