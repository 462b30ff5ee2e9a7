package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// Health-check defaults, applied again here so a config that skipped
// internal/config still behaves.
const (
	defaultHealthPath     = "/"
	defaultHealthInterval = 10 * time.Second
	defaultHealthTimeout  = 2 * time.Second
	maxProbeBodyDrain     = 64 << 10
)

// healthPolicy is a cluster's active health check, normalised.
type healthPolicy struct {
	path      string
	interval  time.Duration
	timeout   time.Duration
	unhealthy int // consecutive failures that eject
	healthy   int // consecutive successes that readmit
	expected  []int
}

func newHealthPolicy(h *v1alpha1.HealthCheck) *healthPolicy {
	p := &healthPolicy{
		path:      h.Path,
		interval:  h.Interval.Duration,
		timeout:   h.Timeout.Duration,
		unhealthy: max(h.UnhealthyThreshold, 1),
		healthy:   max(h.HealthyThreshold, 1),
		expected:  h.ExpectedStatuses,
	}
	if p.path == "" {
		p.path = defaultHealthPath
	} else if !strings.HasPrefix(p.path, "/") {
		p.path = "/" + p.path
	}
	if p.interval <= 0 {
		p.interval = defaultHealthInterval
	}
	if p.timeout <= 0 {
		p.timeout = defaultHealthTimeout
	}
	return p
}

// statusOK reports whether code counts as healthy: one of the expected
// statuses, or 200-399 when none are configured.
func (p *healthPolicy) statusOK(code int) bool {
	if len(p.expected) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(p.expected, code)
}

// checkLoop probes e now and then every interval until ctx ends. It is the
// only writer of e's health, so transitions for one endpoint are reported
// in order.
func (c *Cluster) checkLoop(ctx context.Context, e *Endpoint) {
	p := c.health
	successes, failures := 0, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := c.probe(ctx, e)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
			if !e.Healthy() && successes >= p.healthy {
				c.transition(e, true, nil)
			}
		} else {
			successes, failures = 0, failures+1
			if e.Healthy() && failures >= p.unhealthy {
				c.transition(e, false, err)
			}
		}
		timer.Reset(p.interval)
	}
}

func (c *Cluster) transition(e *Endpoint, healthy bool, cause error) {
	e.healthy.Store(healthy)
	if healthy {
		c.log.Info("upstream endpoint healthy again", "endpoint", e.address)
	} else {
		c.log.Warn("upstream endpoint ejected by health check", "endpoint", e.address,
			"consecutiveFailures", c.health.unhealthy, "error", cause)
	}
	if c.onHealth != nil {
		c.onHealth(c.name, e.address, healthy)
	}
}

// probe sends one GET to e's health path with Host set to e's configured
// host; nil means the endpoint answered with an expected status in time.
func (c *Cluster) probe(ctx context.Context, e *Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, c.health.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.scheme+"://"+e.address+c.health.path, nil)
	if err != nil {
		return err
	}
	req.Host = e.authority()
	req.Header.Set("User-Agent", "sluice-health-check")
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBodyDrain))
	resp.Body.Close()
	if !c.health.statusOK(resp.StatusCode) {
		return fmt.Errorf("health check %s answered %d", c.health.path, resp.StatusCode)
	}
	return nil
}
