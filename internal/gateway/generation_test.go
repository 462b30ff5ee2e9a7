package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
)

// TestGenerationDrained: a replaced generation reports drained only once
// the requests that started on it have finished; requests keep the
// generation (routes) they started on.
func TestGenerationDrained(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "up")
	}))
	t.Cleanup(up.Close)
	snapFor := func(prefix string) *config.Snapshot {
		t.Helper()
		snap, err := config.Parse("gw.yaml", []byte(fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {listeners: [{name: main, address: "127.0.0.1:0"}], admin: {disabled: true}, accessLog: {path: off}}
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: up}
spec: {endpoints: [{address: %q}]}
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: r}
spec: {match: {path: {prefix: %q}}, cluster: up}
`, up.Listener.Addr().String(), prefix)))
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	s, err := gateway.New(snapFor("/a/"), gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr("main")

	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/a/slow")
		if err != nil {
			slow <- -1
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	old := s.Generation()
	eventually(t, "the slow request to be in flight", func() bool { return old.InFlight() == 1 })

	next, err := s.NewGeneration(snapFor("/b/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	next.Clusters.Start(context.Background())
	if got := s.Swap(next); got != old {
		t.Fatalf("Swap returned %p, want the old generation %p", got, old)
	}
	if next.ID != old.ID+1 {
		t.Errorf("new generation id %d after %d", next.ID, old.ID)
	}
	select {
	case <-old.Drained():
		t.Fatal("the old generation reports drained with a request in flight")
	default:
	}
	resp, err := http.Get(base + "/b/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /b/x on the new generation: %d", resp.StatusCode)
	}
	close(release)
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the request in flight across the swap: %d, want 200 (old routes)", code)
	}
	select {
	case <-old.Drained():
	case <-time.After(10 * time.Second):
		t.Fatalf("the old generation did not drain (%d in flight)", old.InFlight())
	}
	select {
	case <-next.Drained():
		t.Error("the generation in force reports drained")
	default:
	}
}
