package cluster

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"
)

// lookupIP resolves host with the system resolver, IPv4 and IPv6.
func lookupIP(ctx context.Context, host string) ([]string, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap().String())
	}
	return out, nil
}

// refreshLoop re-resolves a dns cluster every dnsRefresh until ctx ends.
// The first resolution happens in Registry.Start.
func (c *Cluster) refreshLoop(ctx context.Context) {
	timer := time.NewTimer(c.dnsRefresh)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.resolve(ctx)
		timer.Reset(c.dnsRefresh)
	}
}

// resolve turns every configured host into one endpoint per IP (same port,
// scheme and weight) and swaps the list in if it changed. An endpoint
// whose address is unchanged is kept, with its health and in-flight count.
// A host that fails to resolve keeps its previous endpoints. Each lookup
// is bounded by the connect timeout.
func (c *Cluster) resolve(ctx context.Context) {
	old := c.endpoints.Load()
	list := make([]*Endpoint, 0, len(old.list))
	seen := make(map[string]bool, len(old.list))
	keep := func(e *Endpoint) {
		if !seen[e.address] {
			seen[e.address] = true
			list = append(list, e)
		}
	}
	for _, s := range c.configured {
		var ips []string
		if ip, err := netip.ParseAddr(s.host); err == nil {
			ips = []string{ip.String()}
		} else {
			lctx, cancel := context.WithTimeout(ctx, c.connect)
			got, err := c.lookupIP(lctx, s.host)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil && len(got) == 0 {
				err = &net.DNSError{Err: "no addresses", Name: s.host, IsNotFound: true}
			}
			if err != nil {
				c.log.Warn("DNS resolution failed; keeping previous endpoints", "host", s.host, "error", err)
				for _, e := range old.list {
					if e.hostname == s.host && e.port == s.port && e.scheme == s.scheme {
						keep(e)
					}
				}
				continue
			}
			ips = slices.Clone(got)
			slices.Sort(ips)
		}
		for _, ip := range ips {
			e := newEndpoint(s, ip)
			if prev := old.byAddr[e.address]; prev != nil && prev.hostname == s.host && prev.scheme == s.scheme && prev.weight == s.weight {
				e = prev
			}
			keep(e)
		}
	}
	if slices.Equal(list, old.list) {
		return
	}
	c.log.Debug("DNS endpoints changed", "endpoints", len(list))
	c.setEndpoints(list)
}
