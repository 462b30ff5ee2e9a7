package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// balancer chooses one endpoint per request. pick considers only healthy
// endpoints not in tried (the endpoints a retry already failed on) and
// returns nil when none is left. Implementations are safe for concurrent
// use and allocate nothing.
type balancer interface {
	pick(eps, tried []*Endpoint) *Endpoint
}

func newBalancer(policy string) (balancer, error) {
	switch policy {
	case v1alpha1.BalanceRoundRobin, "":
		return &roundRobin{}, nil
	case v1alpha1.BalanceLeastRequest:
		return leastRequest{}, nil
	case v1alpha1.BalanceRandom:
		return random{}, nil
	case v1alpha1.BalanceWeighted:
		return &weighted{}, nil
	default:
		return nil, fmt.Errorf("spec.balancing: unknown policy %q (use %s, %s, %s or %s)", policy,
			v1alpha1.BalanceRoundRobin, v1alpha1.BalanceLeastRequest, v1alpha1.BalanceRandom, v1alpha1.BalanceWeighted)
	}
}

func usable(e *Endpoint, tried []*Endpoint) bool {
	return e.Healthy() && !slices.Contains(tried, e)
}

func countUsable(eps, tried []*Endpoint) int {
	n := 0
	for _, e := range eps {
		if usable(e, tried) {
			n++
		}
	}
	return n
}

// nthUsable returns the k-th (0-based) usable endpoint, or nil if health
// changed since counting and there are fewer now.
func nthUsable(eps, tried []*Endpoint, k int) *Endpoint {
	for _, e := range eps {
		if usable(e, tried) {
			if k == 0 {
				return e
			}
			k--
		}
	}
	return nil
}

// roundRobin cycles through the usable endpoints in configured order.
type roundRobin struct{ next atomic.Uint64 }

func (b *roundRobin) pick(eps, tried []*Endpoint) *Endpoint {
	n := countUsable(eps, tried)
	if n == 0 {
		return nil
	}
	k := (b.next.Add(1) - 1) % uint64(n)
	return nthUsable(eps, tried, int(k))
}

// random picks a usable endpoint uniformly.
type random struct{}

func (random) pick(eps, tried []*Endpoint) *Endpoint {
	n := countUsable(eps, tried)
	if n == 0 {
		return nil
	}
	return nthUsable(eps, tried, rand.IntN(n))
}

// leastRequest samples two distinct usable endpoints and takes the one with
// fewer requests in flight ("power of two choices"): near-optimal spread
// without scanning or locking.
type leastRequest struct{}

func (leastRequest) pick(eps, tried []*Endpoint) *Endpoint {
	n := countUsable(eps, tried)
	switch n {
	case 0:
		return nil
	case 1:
		return nthUsable(eps, tried, 0)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := nthUsable(eps, tried, i), nthUsable(eps, tried, j)
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.InFlight() < a.InFlight():
		return b
	default:
		return a
	}
}

// weighted is smooth weighted round robin: over any window of sum(weights)
// picks each endpoint is chosen exactly weight times, interleaved rather
// than in bursts. Weight 0 is never picked.
type weighted struct{ mu sync.Mutex }

func (b *weighted) pick(eps, tried []*Endpoint) *Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	var best *Endpoint
	total := int64(0)
	for _, e := range eps {
		if e.weight <= 0 || !usable(e, tried) {
			continue
		}
		e.swrrCurrent += int64(e.weight)
		total += int64(e.weight)
		if best == nil || e.swrrCurrent > best.swrrCurrent {
			best = e
		}
	}
	if best != nil {
		best.swrrCurrent -= total
	}
	return best
}
