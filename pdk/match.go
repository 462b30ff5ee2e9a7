package pdk

import "strings"

// This file is the per-request choice of a configuration among the rules
// parsed by rules.go: rules in declaration order, first match wins, else
// the global configuration.

// match picks the configuration for a request: rules in declaration
// order, first match wins, else the global configuration; ok is false when
// the plugin does not apply. authority is the request's :authority; route
// and cluster return the route_name and cluster_name properties and are
// only called when a rule needs them.
func (rs *ruleSet[C]) match(authority string, route, cluster func() string) (cfg C, ok bool) {
	if rs == nil {
		return cfg, false
	}
	host := ""
	hostDone := false
	for i := range rs.rules {
		r := &rs.rules[i]
		switch r.kind {
		case matchRoute:
			if _, hit := r.routes[route()]; hit {
				return r.config, true
			}
		case matchRouteAndService:
			if _, hit := r.routes[route()]; hit && serviceMatch(r.services, cluster()) {
				return r.config, true
			}
		case matchDomain:
			if !hostDone {
				host, hostDone = stripPort(authority), true
			}
			if hostMatch(r.hosts, host) {
				return r.config, true
			}
		case matchService:
			if serviceMatch(r.services, cluster()) {
				return r.config, true
			}
		case matchRoutePrefix:
			name := route()
			for _, p := range r.prefixes {
				if strings.HasPrefix(name, p) {
					return r.config, true
				}
			}
		}
	}
	if rs.hasGlobal {
		return rs.global, true
	}
	return cfg, false
}

// stripPort removes a port from an :authority, leaving IPv6 literals
// ("[::1]") intact, as Envoy does.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	if j := strings.LastIndexByte(host, ']'); j > i {
		return host
	}
	return host[:i]
}

func hostMatch(patterns []hostPattern, host string) bool {
	for _, p := range patterns {
		switch p.kind {
		case '*':
			if strings.HasSuffix(host, p.host) {
				return true
			}
		case '^':
			if strings.HasPrefix(host, p.host) {
				return true
			}
		default:
			if host == p.host {
				return true
			}
		}
	}
	return false
}

// serviceMatch compares a cluster name outbound|port|subset|fqdn with
// entries "fqdn" (any port) or "fqdn:port".
func serviceMatch(services []string, cluster string) bool {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 {
		return false
	}
	port, fqdn := parts[1], parts[3]
	for _, s := range services {
		if i := strings.LastIndexByte(s, ':'); i >= 0 && fqdn == s[:i] && port == s[i+1:] {
			return true
		}
		if fqdn == s {
			return true
		}
	}
	return false
}
