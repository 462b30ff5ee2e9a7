package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Fetcher defaults.
const (
	DefaultFetchTimeout   = 2 * time.Minute
	DefaultBackoffInitial = 5 * time.Second
	DefaultBackoffMax     = 5 * time.Minute
)

// Fetcher gets plugin modules from their spec.url: file://, builtin://,
// http(s):// and oci://. Network sources are cached on disk by sha256
// (see diskCache); a network fetch that fails is not retried before a
// back-off expires, which doubles with every consecutive failure.
//
// The zero value is ready to use; a nil *Fetcher uses a shared zero
// Fetcher. Safe for concurrent use; concurrent fetches of one source
// share a single download.
type Fetcher struct {
	// CacheDir holds downloaded modules; "" means DefaultCacheDir(),
	// "off" disables the disk cache.
	CacheDir string
	// HTTPClient is used for http(s):// and registries; nil means a
	// client with the default transport.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Timeout bounds each network fetch (a download, or a registry
	// resolve and pull); 0 means DefaultFetchTimeout.
	Timeout time.Duration
	// BackoffInitial is how long a failed source is left alone after its
	// first failure; it doubles per consecutive failure up to BackoffMax.
	BackoffInitial, BackoffMax time.Duration
	// PlainHTTPRegistries are registries (host[:port]) reached over plain
	// HTTP; loopback registries always are.
	PlainHTTPRegistries []string
	// MaxBytes bounds a module; 0 means 256 MiB.
	MaxBytes int64
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	failures map[string]*failure
	inflight map[string]*call
	warned   map[string]bool
}

type failure struct {
	count int
	until time.Time
	err   error
}

type call struct {
	done chan struct{}
	data []byte
	err  error
}

var sharedFetcher = &Fetcher{}

// BackoffError is returned, without a fetch, for a source that failed
// recently.
type BackoffError struct {
	URL      string
	Until    time.Time
	Failures int
	Err      error // the last failure
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("%v (not retried before %s: back-off after %d consecutive failure(s))",
		e.Err, e.Until.UTC().Format(time.RFC3339), e.Failures)
}

func (e *BackoffError) Unwrap() error { return e.Err }

// HTTPStatusError is an http(s):// source answering other than 200.
type HTTPStatusError struct {
	URL    string
	Status string // "404 Not Found"
	Code   int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("GET %s: server answered HTTP %s", e.URL, e.Status)
}

// UnreachableError is a server or registry that could not be reached.
type UnreachableError struct {
	What string // "server" or "registry"
	URL  string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s: %s unreachable: %v", e.URL, e.What, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Fetch returns the module spec.url names, verified against wantSHA when
// given. pullPolicy (IfNotPresent, Always, or "" / UNSPECIFIED_POLICY for
// Higress's default) and pullSecret (a Docker config.json path, "" for
// anonymous) apply to oci:// only.
func (f *Fetcher) Fetch(ctx context.Context, rawURL, wantSHA, pullPolicy, pullSecret string) ([]byte, error) {
	if f == nil {
		f = sharedFetcher
	}
	wantSHA = strings.ToLower(strings.TrimSpace(wantSHA))
	if !strings.Contains(rawURL, "://") {
		rawURL = "oci://" + rawURL // Higress's default scheme
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file", "builtin":
		data, err := readLocal(u)
		if err != nil {
			return nil, err
		}
		if err := checkSHA(data, wantSHA); err != nil {
			return nil, err
		}
		return data, nil
	case "http", "https":
		return f.network(ctx, u.Redacted(), wantSHA, func(ctx context.Context) ([]byte, error) {
			return f.fetchHTTP(ctx, u, wantSHA)
		})
	case "oci":
		return f.network(ctx, rawURL, wantSHA, func(ctx context.Context) ([]byte, error) {
			return f.fetchOCI(ctx, rawURL, wantSHA, pullPolicy, pullSecret)
		})
	}
	return nil, fmt.Errorf("url %q: unsupported scheme %q (use oci://, http(s)://, file:// or builtin://)", rawURL, u.Scheme)
}

// network runs fetch under the back-off and single-flight rules. fetch
// serves cache hits itself, before any network access; a cache hit is
// never subject to the back-off.
func (f *Fetcher) network(ctx context.Context, shown, wantSHA string, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	key := shown + "\x00" + wantSHA
	f.mu.Lock()
	if f.inflight == nil {
		f.inflight, f.failures, f.warned = map[string]*call{}, map[string]*failure{}, map[string]bool{}
	}
	if c := f.inflight[key]; c != nil {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.data, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	f.inflight[key] = c
	fl := f.failures[key]
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.inflight, key)
		f.mu.Unlock()
		close(c.done)
	}()

	tctx, cancel := context.WithTimeout(ctx, f.timeout())
	defer cancel()
	// A back-off holds only network access: fetch consults the cache
	// first, then asks this gate before going out.
	gate := func() error {
		if fl != nil && f.now().Before(fl.until) {
			return &BackoffError{URL: shown, Until: fl.until, Failures: fl.count, Err: fl.err}
		}
		return nil
	}
	c.data, c.err = fetch(withGate(tctx, gate))
	var be *BackoffError
	switch {
	case c.err == nil:
		f.mu.Lock()
		delete(f.failures, key)
		f.mu.Unlock()
	case errors.As(c.err, &be):
		// Still backing off: nothing new was tried.
	case ctx.Err() != nil:
		// The caller gave up (shutdown, superseded reload): not the
		// source's fault.
	default:
		if tctx.Err() != nil && errors.Is(c.err, context.DeadlineExceeded) {
			what := "source"
			var ue *UnreachableError
			if errors.As(c.err, &ue) {
				what = ue.What
			}
			c.err = &UnreachableError{What: what, URL: shown, Err: fmt.Errorf("no answer within %s", f.timeout())}
		}
		f.mu.Lock()
		n := 1
		if old := f.failures[key]; old != nil {
			n = old.count + 1
		}
		d := f.backoff(n)
		f.failures[key] = &failure{count: n, until: f.now().Add(d), err: c.err}
		f.mu.Unlock()
		f.logger().Warn("plugin fetch failed", "url", shown, "failures", n, "retry_after", d.String(), "error", c.err)
	}
	return c.data, c.err
}

type gateKey struct{}

func withGate(ctx context.Context, gate func() error) context.Context {
	return context.WithValue(ctx, gateKey{}, gate)
}

// mayFetch is called by a source right before it goes to the network.
func mayFetch(ctx context.Context) error {
	if g, ok := ctx.Value(gateKey{}).(func() error); ok {
		return g()
	}
	return nil
}

func (f *Fetcher) backoff(failures int) time.Duration {
	d, max := f.BackoffInitial, f.BackoffMax
	if d <= 0 {
		d = DefaultBackoffInitial
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fetcher) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return DefaultFetchTimeout
}

func (f *Fetcher) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

func (f *Fetcher) httpClient() *http.Client {
	if f.HTTPClient != nil {
		return f.HTTPClient
	}
	return http.DefaultClient
}

func (f *Fetcher) maxBytes() int64 {
	if f.MaxBytes > 0 {
		return f.MaxBytes
	}
	return 256 << 20
}

func (f *Fetcher) cache() diskCache {
	switch f.CacheDir {
	case "off":
		return diskCache{}
	case "":
		return diskCache{dir: DefaultCacheDir()}
	}
	return diskCache{dir: f.CacheDir}
}

// store writes a fetched module to the cache; a cache that cannot be
// written is logged, never fatal.
func (f *Fetcher) store(data []byte, ref *refEntry) {
	c := f.cache()
	sha, err := c.put(data)
	if err == nil && ref != nil {
		ref.SHA256, ref.Fetched = sha, f.now().UTC()
		err = c.putRef(*ref)
	}
	if err != nil {
		f.warnOnce("cache:"+c.dir, "cannot write the plugin cache; modules are downloaded again on every load", "dir", c.dir, "error", err)
	}
}

func (f *Fetcher) warnOnce(key, msg string, args ...any) {
	f.mu.Lock()
	seen := f.warned[key]
	if f.warned != nil {
		f.warned[key] = true
	}
	f.mu.Unlock()
	if !seen {
		f.logger().Warn(msg, args...)
	}
}

// networkError turns a transport error into an UnreachableError when the
// peer could not be reached at all.
func networkError(what, shown string, err error) error {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	if errors.As(err, &op) || errors.As(err, &dns) || errors.Is(err, context.DeadlineExceeded) {
		return &UnreachableError{What: what, URL: shown, Err: unwrapURLError(err)}
	}
	return err
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// defaultPullPolicy is Higress's: Always for :latest or no tag without a
// digest, IfNotPresent otherwise.
func defaultPullPolicy(policy string, tag, digest string) string {
	switch policy {
	case v1alpha1.PullAlways, v1alpha1.PullIfNotPresent:
		return policy
	}
	if digest == "" && (tag == "" || tag == "latest") {
		return v1alpha1.PullAlways
	}
	return v1alpha1.PullIfNotPresent
}

// secretFile returns the pull secret if it is a readable file; otherwise
// it warns once and pulls anonymously (config validation warns too).
func (f *Fetcher) secretFile(secret string) string {
	if secret == "" {
		return ""
	}
	if st, err := os.Stat(secret); err != nil || st.IsDir() {
		f.warnOnce("secret:"+secret, "imagePullSecret is not a readable Docker config file; pulling without credentials", "imagePullSecret", secret)
		return ""
	}
	return secret
}
