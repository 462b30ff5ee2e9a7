package cluster

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// testEndpoints makes healthy endpoints a, b, c… with the given weights.
func testEndpoints(weights ...int) []*Endpoint {
	out := make([]*Endpoint, len(weights))
	for i, w := range weights {
		out[i] = newEndpoint(endpointSpec{scheme: "http", host: string(rune('a' + i)), port: 80, weight: w}, string(rune('a'+i)))
	}
	return out
}

func hostsOf(eps []*Endpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		if e == nil {
			out[i] = "<nil>"
		} else {
			out[i] = e.hostname
		}
	}
	return out
}

func TestRoundRobinExactOrder(t *testing.T) {
	a, b, c := idServer(t, "a"), idServer(t, "b"), idServer(t, "c")
	cl := oneCluster(t, Options{}, v1alpha1.ClusterSpec{
		Balancing: v1alpha1.BalanceRoundRobin,
		Endpoints: endpoints(addrOf(a), addrOf(b), addrOf(c)),
	})
	var got []string
	for range 7 {
		body, _ := mustSend(t, cl, "")
		got = append(got, body)
	}
	want := []string{"a:", "b:", "c:", "a:", "b:", "c:", "a:"}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestRoundRobinSkipsUnhealthy(t *testing.T) {
	eps := testEndpoints(1, 1, 1)
	eps[1].healthy.Store(false)
	b := &roundRobin{}
	var got []*Endpoint
	for range 4 {
		got = append(got, b.pick(eps, nil))
	}
	if want := []string{"a", "c", "a", "c"}; !slices.Equal(hostsOf(got), want) {
		t.Errorf("picks = %v, want %v", hostsOf(got), want)
	}
}

func TestRandomDistribution(t *testing.T) {
	eps := testEndpoints(1, 1, 1)
	counts := map[string]int{}
	const n = 3000
	for range n {
		counts[random{}.pick(eps, nil).hostname]++
	}
	for _, e := range eps {
		// Expected 1000 each; the standard deviation is about 26.
		if c := counts[e.hostname]; c < 800 || c > 1200 {
			t.Errorf("endpoint %s picked %d of %d times (counts %v)", e.hostname, c, n, counts)
		}
	}
}

func TestWeightedDistribution(t *testing.T) {
	tests := []struct {
		weights []int
		want    map[string]int // per window of sum(weights) picks
	}{
		{weights: []int{5, 1, 0}, want: map[string]int{"a": 5, "b": 1}},
		{weights: []int{1, 2, 3}, want: map[string]int{"a": 1, "b": 2, "c": 3}},
		{weights: []int{0, 0, 7}, want: map[string]int{"c": 7}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.weights), func(t *testing.T) {
			eps := testEndpoints(tt.weights...)
			b := &weighted{}
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			// Smooth weighted round robin is exact over every full cycle.
			for cycle := range 50 {
				counts := map[string]int{}
				for range total {
					counts[b.pick(eps, nil).hostname]++
				}
				if !mapsEqual(counts, tt.want) {
					t.Fatalf("cycle %d: counts %v, want %v", cycle, counts, tt.want)
				}
			}
		})
	}
}

func TestWeightedSpreadsPicks(t *testing.T) {
	eps := testEndpoints(2, 1)
	b := &weighted{}
	var got []*Endpoint
	for range 6 {
		got = append(got, b.pick(eps, nil))
	}
	if want := []string{"a", "b", "a", "a", "b", "a"}; !slices.Equal(hostsOf(got), want) {
		t.Errorf("picks = %v, want %v", hostsOf(got), want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBalancersSkipUnusable(t *testing.T) {
	for _, policy := range []string{v1alpha1.BalanceRoundRobin, v1alpha1.BalanceLeastRequest, v1alpha1.BalanceRandom, v1alpha1.BalanceWeighted} {
		t.Run(policy, func(t *testing.T) {
			b, err := newBalancer(policy)
			if err != nil {
				t.Fatal(err)
			}
			eps := testEndpoints(1, 1, 1)
			eps[2].healthy.Store(false)
			for range 20 {
				if got := b.pick(eps, eps[:1]); got != eps[1] {
					t.Fatalf("pick with a tried and c unhealthy = %s, want b", hostsOf([]*Endpoint{got}))
				}
			}
			if got := b.pick(eps, eps[:2]); got != nil {
				t.Errorf("pick with nothing usable = %s, want nil", got.hostname)
			}
		})
	}
}

func TestLeastRequestPrefersIdleEndpoint(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	arrived := make(chan struct{}, 1)
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "busy")
	}))
	t.Cleanup(busy.Close)
	t.Cleanup(unblock) // runs before busy.Close
	idle := idServer(t, "idle")

	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{
		Balancing: v1alpha1.BalanceLeastRequest,
		Endpoints: endpoints(addrOf(busy), addrOf(idle)),
	})
	done := make(chan error, 1)
	go func() {
		body, _, err := send(t, c, http.MethodGet, "", addrOf(busy))
		if err == nil && body != "busy" {
			err = fmt.Errorf("body %q", body)
		}
		done <- err
	}()
	<-arrived
	for i := range 30 {
		if body, _ := mustSend(t, c, ""); body != "idle:" {
			t.Fatalf("request %d went to %q while the other endpoint had a request in flight", i, body)
		}
	}
	unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Endpoints() {
		if n := e.InFlight(); n != 0 {
			t.Errorf("endpoint %s: %d in flight after all bodies closed", e.Address(), n)
		}
	}
}
