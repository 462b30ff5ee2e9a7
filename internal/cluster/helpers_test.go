package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func clusterCfg(name string, spec v1alpha1.ClusterSpec) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{
		TypeMeta: v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindCluster},
		Metadata: v1alpha1.ObjectMeta{Name: name},
		Spec:     spec,
	}
}

func endpoints(addrs ...string) []v1alpha1.Endpoint {
	out := make([]v1alpha1.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = v1alpha1.Endpoint{Address: a, Weight: 1}
	}
	return out
}

// newTestRegistry builds a registry stopped at the end of the test.
func newTestRegistry(t *testing.T, opts Options, clusters ...*v1alpha1.Cluster) *Registry {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	r, err := NewRegistry(clusters, opts)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// oneCluster builds a registry holding one cluster named "up" and returns it.
func oneCluster(t *testing.T, opts Options, spec v1alpha1.ClusterSpec) *Cluster {
	t.Helper()
	r := newTestRegistry(t, opts, clusterCfg("up", spec))
	c, err := r.Lookup("up")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// idServer answers every request with "<id>:<request body>".
func idServer(t *testing.T, id string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", id, b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func addrOf(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// send makes one request through c and returns the response body. It
// does not fail the test, so goroutines may call it.
func send(t *testing.T, c *Cluster, method, body, override string) (string, *Endpoint, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://placeholder/path", rd)
	if err != nil {
		return "", nil, err
	}
	resp, ep, err := c.RoundTrip(req, override)
	if err != nil {
		return "", ep, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", ep, fmt.Errorf("reading response: %w", err)
	}
	return string(b), ep, nil
}

// mustSend is send that fails the test on error.
func mustSend(t *testing.T, c *Cluster, override string) (string, *Endpoint) {
	t.Helper()
	body, ep, err := send(t, c, http.MethodGet, "", override)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	return body, ep
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// healthEvent is one OnHealthChange call.
type healthEvent struct {
	cluster, endpoint string
	healthy           bool
}

// healthRecorder collects OnHealthChange calls.
type healthRecorder struct {
	mu     sync.Mutex
	events []healthEvent
}

func (h *healthRecorder) record(cluster, endpoint string, healthy bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, healthEvent{cluster, endpoint, healthy})
}

func (h *healthRecorder) snapshot() []healthEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]healthEvent(nil), h.events...)
}

// has reports whether ev was recorded at index from or later.
func (h *healthRecorder) has(ev healthEvent, from int) bool {
	evs := h.snapshot()
	for i := from; i < len(evs); i++ {
		if evs[i] == ev {
			return true
		}
	}
	return false
}

func startRegistry(t *testing.T, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r.Start(ctx)
}
