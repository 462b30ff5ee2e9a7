package cluster

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// RoundTrip sends req to one endpoint of the cluster and returns the
// response and the endpoint used.
//
// It sets req.URL.Scheme and req.URL.Host to the endpoint; req.Host (the
// authority) is left as the caller set it. The endpoint is override when
// that equals one of the cluster's endpoint addresses, even an unhealthy
// or weight-0 one (Envoy's upstream override host); otherwise the
// balancing policy picks among the healthy endpoints, and none healthy
// gives ErrNoHealthyEndpoint.
//
// When connecting fails (*ConnectError) and the request body has not been
// read, the request is retried on another endpoint, up to
// spec.retries.connectFailure more times; no request is ever sent twice.
// A retry after a failed override goes through the balancing policy.
//
// Like an http.RoundTripper, RoundTrip always closes req.Body, also on
// error. On error the endpoint is the last one tried (nil if none was).
// The endpoint's in-flight count, which least_request balances on, drops
// when the response body is closed.
func (c *Cluster) RoundTrip(req *http.Request, override string) (*http.Response, *Endpoint, error) {
	if c.typ == v1alpha1.ClusterRedis {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, nil, fmt.Errorf("cluster %s: %w (type redis)", c.displayName(), ErrNotHTTP)
	}
	set := c.endpoints.Load()
	var body *heldBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &heldBody{rc: req.Body, holding: true}
		req.Body = body
	}

	var ep *Endpoint
	if override != "" {
		if ep = set.byAddr[override]; ep == nil {
			c.log.Debug("upstream override host is not an endpoint of the cluster; balancing instead", "override", override)
		}
	}
	var tried []*Endpoint
	var lastErr error
	for attempt := 0; ; attempt++ {
		if ep == nil {
			ep = c.balancer.pick(set.list, tried)
		}
		if ep == nil {
			body.release(true)
			if lastErr != nil {
				return nil, tried[len(tried)-1], lastErr
			}
			return nil, nil, c.noHealthyEndpoint(set)
		}
		req.URL.Scheme, req.URL.Host = ep.scheme, ep.address
		ep.inflight.Add(1)
		resp, err := c.rt.RoundTrip(req)
		if err == nil {
			body.release(false)
			resp.Body = releaseOnClose(resp.Body, ep)
			return resp, ep, nil
		}
		ep.inflight.Add(-1)
		var ce *ConnectError
		if attempt >= c.retries || !errors.As(err, &ce) || body.wasRead() || req.Context().Err() != nil {
			body.release(true)
			return nil, ep, err
		}
		c.log.Debug("connect failed; retrying on another endpoint", "endpoint", ep.address, "error", err)
		tried = append(tried, ep)
		lastErr = err
		ep = nil
	}
}

func (c *Cluster) noHealthyEndpoint(set *endpointSet) error {
	if _, ok := c.balancer.(*weighted); ok {
		return fmt.Errorf("cluster %s: %w (%d of %d endpoints healthy with weight > 0)",
			c.displayName(), ErrNoHealthyEndpoint, set.usableWeighted(), len(set.list))
	}
	return fmt.Errorf("cluster %s: %w (%d of %d endpoints healthy)",
		c.displayName(), ErrNoHealthyEndpoint, set.healthyCount(), len(set.list))
}

// heldBody wraps a request body across attempts. It records whether the
// transport read from it (then a retry would send a truncated body), and
// while holding it defers Close, which http.Transport calls when an
// attempt fails, so the next attempt can still send the body.
type heldBody struct {
	rc   io.ReadCloser
	read atomic.Bool

	mu           sync.Mutex
	holding      bool // RoundTrip may still retry: defer Close
	closePending bool // Close was called while holding
	closed       bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *heldBody) Close() error {
	b.mu.Lock()
	if b.holding {
		b.closePending = true
		b.mu.Unlock()
		return nil
	}
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	return b.rc.Close()
}

func (b *heldBody) wasRead() bool { return b != nil && b.read.Load() }

// release ends holding: Close passes through from now on, and a Close
// deferred meanwhile, or closeNow, closes the caller's body now.
func (b *heldBody) release(closeNow bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.holding = false
	doClose := (closeNow || b.closePending) && !b.closed
	b.closed = b.closed || doClose
	b.mu.Unlock()
	if doClose {
		b.rc.Close()
	}
}

// releaseOnClose wraps a response body so that closing it ends the
// request's in-flight accounting. A 101 Switching Protocols body is also
// writable, and stays so.
func releaseOnClose(rc io.ReadCloser, ep *Endpoint) io.ReadCloser {
	b := &releasingBody{ReadCloser: rc, ep: ep}
	if w, ok := rc.(io.Writer); ok {
		return &releasingRWBody{releasingBody: b, w: w}
	}
	return b
}

type releasingBody struct {
	io.ReadCloser
	ep   *Endpoint
	done atomic.Bool
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done.CompareAndSwap(false, true) {
		b.ep.inflight.Add(-1)
	}
	return err
}

type releasingRWBody struct {
	*releasingBody
	w io.Writer
}

func (b *releasingRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
