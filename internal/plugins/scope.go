package plugins

import (
	"strings"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/gateway"
)

// scope decides, host-side, whether a plugin applies to a stream, so that
// plugins disabled for a route, domain or service are skipped without
// entering the VM (DESIGN.md, "How a request flows", step 2).
type scope struct {
	global   bool
	rules    []ruleScope // enabled rules
	disabled []ruleScope // configDisable rules: the plugin is off there
}

type ruleScope struct {
	routes   []string
	domains  []string
	services []string
}

func newScope(spec *v1alpha1.WasmPluginSpec) scope {
	s := scope{global: spec.PluginConfig != nil || !spec.DefaultConfigDisable}
	for _, r := range spec.MatchRules {
		rs := ruleScope{routes: r.Ingress, domains: r.Domain, services: r.Service}
		if r.ConfigDisable {
			s.disabled = append(s.disabled, rs)
		} else if spec.PluginConfig == nil {
			s.rules = append(s.rules, rs)
		}
	}
	return s
}

// applies reports whether the plugin runs for this stream.
func (s scope) applies(st *gateway.Stream) bool {
	if len(s.disabled) == 0 && s.global {
		return true
	}
	route, cluster := st.RouteName(), st.ClusterName()
	host := st.Authority() // the chain is chosen before request headers exist
	if h := st.RequestHeaders(); h != nil {
		host = h.Value(":authority")
	}
	for _, r := range s.disabled {
		if r.matches(route, host, cluster) {
			return false
		}
	}
	if s.global {
		return true
	}
	for _, r := range s.rules {
		if r.matches(route, host, cluster) {
			return true
		}
	}
	return false
}

// matches follows wasm-go's matcher categories: route (and service when
// both are given), else domain, else service.
func (r ruleScope) matches(route, authority, cluster string) bool {
	switch {
	case len(r.routes) > 0:
		if !contains(r.routes, route) {
			return false
		}
		return len(r.services) == 0 || serviceMatch(r.services, cluster)
	case len(r.domains) > 0:
		return domainMatch(r.domains, authority)
	case len(r.services) > 0:
		return serviceMatch(r.services, cluster)
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func domainMatch(patterns []string, authority string) bool {
	host := strings.ToLower(authority)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		switch {
		case strings.HasPrefix(p, "*"):
			if strings.HasSuffix(host, p[1:]) {
				return true
			}
		case strings.HasSuffix(p, "*"):
			if strings.HasPrefix(host, p[:len(p)-1]) {
				return true
			}
		case p == host:
			return true
		}
	}
	return false
}

// serviceMatch: cluster_name outbound|port|subset|fqdn; "fqdn:port" matches
// part 4 and part 2, "fqdn" part 4 only.
func serviceMatch(services []string, cluster string) bool {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 {
		return false
	}
	for _, s := range services {
		fqdn, port, hasPort := strings.Cut(s, ":")
		if fqdn != parts[3] {
			continue
		}
		if !hasPort || port == parts[1] {
			return true
		}
	}
	return false
}
