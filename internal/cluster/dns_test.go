package cluster

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

func addresses(c *Cluster) []string {
	var out []string
	for _, e := range c.Endpoints() {
		out = append(out, e.Address())
	}
	return out
}

func TestDNSResolvesLocalhost(t *testing.T) {
	srv := idServer(t, "a")
	_, port := splitAddr(t, addrOf(srv))
	r := newTestRegistry(t, Options{}, clusterCfg("up", v1alpha1.ClusterSpec{
		Type:      v1alpha1.ClusterDNS,
		Endpoints: endpoints("localhost:" + port),
	}))
	c, _ := r.Lookup("up")
	if got := addresses(c); !slices.Equal(got, []string{"localhost:" + port}) {
		t.Errorf("before Start endpoints = %v, want the configured host", got)
	}
	startRegistry(t, r)
	got := addresses(c)
	if !slices.Contains(got, "127.0.0.1:"+port) {
		t.Fatalf("endpoints after Start = %v, want 127.0.0.1:%s among them", got, port)
	}
	for _, e := range c.Endpoints() {
		host, _ := splitAddr(t, e.Address())
		if _, err := netip.ParseAddr(host); err != nil || e.Hostname() != "localhost" || e.Weight() != 1 {
			t.Errorf("endpoint %s (hostname %q, weight %d) is not a resolved IP of localhost", e.Address(), e.Hostname(), e.Weight())
		}
	}
	if body, ep := mustSend(t, c, "127.0.0.1:"+port); body != "a:" || ep.Address() != "127.0.0.1:"+port {
		t.Errorf("got %q via %s", body, ep.Address())
	}
}

// fakeDNS answers lookups from a table that tests change.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]string
	calls   atomic.Int32
}

func (f *fakeDNS) set(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ips == nil {
		delete(f.answers, host)
	} else {
		f.answers[host] = ips
	}
}

func (f *fakeDNS) lookup(_ context.Context, host string) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	ips, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(ips), nil
}

func TestDNSRefresh(t *testing.T) {
	dns := &fakeDNS{answers: map[string][]string{}}
	dns.set("llm.test", "10.0.0.2", "10.0.0.1")
	rec := &healthRecorder{}
	r := newTestRegistry(t, Options{OnHealthChange: rec.record}, clusterCfg("up", v1alpha1.ClusterSpec{
		Type:       v1alpha1.ClusterDNS,
		Port:       8080,
		Endpoints:  []v1alpha1.Endpoint{{Address: "llm.test", Weight: 3}, {Address: "10.0.0.9:9000", Weight: 1}},
		DNSRefresh: v1alpha1.D(5 * time.Millisecond),
	}))
	c, _ := r.Lookup("up")
	c.lookupIP = dns.lookup // before Start: no goroutine reads it yet
	startRegistry(t, r)

	if got, want := addresses(c), []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.9:9000"}; !slices.Equal(got, want) {
		t.Fatalf("endpoints = %v, want %v", got, want)
	}
	first := c.Endpoints()[0]
	if first.Weight() != 3 || first.Hostname() != "llm.test" {
		t.Errorf("resolved endpoint weight %d hostname %q", first.Weight(), first.Hostname())
	}
	first.healthy.Store(false) // as if a health check had ejected it

	t.Run("change keeps unchanged endpoints", func(t *testing.T) {
		mark := len(rec.snapshot())
		dns.set("llm.test", "10.0.0.1", "10.0.0.3")
		want := []string{"10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.9:9000"}
		eventually(t, "the new answer", func() bool { return slices.Equal(addresses(c), want) })
		kept := c.Endpoints()[0]
		if kept != first || kept.Healthy() {
			t.Errorf("10.0.0.1 was replaced or lost its health state (same object %v, healthy %v)", kept == first, kept.Healthy())
		}
		evs := rec.snapshot()[mark:]
		if !slices.Equal(evs, []healthEvent{{"up", "10.0.0.3:8080", true}}) {
			t.Errorf("events for the change = %v, want only the new endpoint", evs)
		}
	})

	t.Run("failure keeps previous endpoints", func(t *testing.T) {
		before, beforeAddrs := c.Endpoints(), addresses(c)
		dns.set("llm.test") // NXDOMAIN from now on
		calls := dns.calls.Load()
		eventually(t, "two more lookups", func() bool { return dns.calls.Load() >= calls+2 })
		if after := c.Endpoints(); !slices.Equal(after, before) {
			t.Errorf("endpoints changed on a failed lookup: %v → %v", beforeAddrs, addresses(c))
		}
	})
}

func TestDNSInitialFailureKeepsConfiguredHost(t *testing.T) {
	r := newTestRegistry(t, Options{}, clusterCfg("up", v1alpha1.ClusterSpec{
		Type:           v1alpha1.ClusterDNS,
		Endpoints:      endpoints("nowhere.test:80"),
		ConnectTimeout: v1alpha1.D(time.Second),
	}))
	c, _ := r.Lookup("up")
	c.lookupIP = func(context.Context, string) ([]string, error) { return nil, errors.New("SERVFAIL") }
	startRegistry(t, r)
	if got := addresses(c); !slices.Equal(got, []string{"nowhere.test:80"}) {
		t.Errorf("endpoints = %v, want the configured host kept", got)
	}
	_, _, err := send(t, c, "GET", "", "")
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nowhere.test") {
		t.Errorf("err = %v, want a ConnectError for nowhere.test", err)
	}
}
