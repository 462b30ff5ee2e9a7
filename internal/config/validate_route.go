package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file checks a Route: hosts, matches, targets, rewrites.

func (s scope) route(r *v1alpha1.RouteSpec) {
	for i, h := range r.Hosts {
		s.routeHost(fmt.Sprintf("spec.hosts[%d]", i), h)
	}

	pm := r.Match.Path
	if pm != nil {
		s.pathMatch(pm)
	}
	seen := map[string]int{}
	for i, m := range r.Match.Methods {
		p := fmt.Sprintf("spec.match.methods[%d]", i)
		if !httpguts.ValidHeaderFieldName(m) { // a method is an HTTP token
			s.err(p, fmt.Sprintf("%q is not a valid HTTP method", m), "e.g. GET, POST")
			continue
		}
		up := strings.ToUpper(m)
		if j, dup := seen[up]; dup {
			s.err(p, fmt.Sprintf("method %s is listed twice (also spec.match.methods[%d])", up, j), "")
		}
		seen[up] = i
	}
	for i, h := range r.Match.Headers {
		s.headerMatch(fmt.Sprintf("spec.match.headers[%d]", i), h)
	}

	switch {
	case r.Cluster != "" && len(r.WeightedClusters) > 0:
		s.err("spec.cluster", "set either cluster or weightedClusters, not both", "")
	case r.Cluster == "" && len(r.WeightedClusters) == 0:
		s.err("spec.cluster", "a route needs a target cluster", "set cluster: <name>, or weightedClusters to split traffic")
	case r.Cluster != "":
		s.clusterRef("spec.cluster", r.Cluster)
	}
	targets := map[string]int{}
	for i, wc := range r.WeightedClusters {
		p := fmt.Sprintf("spec.weightedClusters[%d]", i)
		if wc.Cluster == "" {
			s.err(p+".cluster", "cluster is required", "")
		} else {
			if j, dup := targets[wc.Cluster]; dup {
				s.err(p+".cluster", fmt.Sprintf("cluster %q is listed twice (also spec.weightedClusters[%d])", wc.Cluster, j), "add the weights together")
			}
			targets[wc.Cluster] = i
			s.clusterRef(p+".cluster", wc.Cluster)
		}
		if wc.Weight <= 0 {
			s.err(p+".weight", fmt.Sprintf("weight %d must be greater than 0", wc.Weight), "remove the entry to send it no traffic")
		}
	}

	if rw := r.Rewrite; rw != nil {
		if rw.Path != "" && rw.PathPrefix != "" {
			s.err("spec.rewrite", "set either path or pathPrefix, not both", "")
		}
		if rw.Path != "" && !strings.HasPrefix(rw.Path, "/") {
			s.err("spec.rewrite.path", fmt.Sprintf("path %q must start with /", rw.Path), "")
		}
		if rw.PathPrefix != "" {
			if !strings.HasPrefix(rw.PathPrefix, "/") {
				s.err("spec.rewrite.pathPrefix", fmt.Sprintf("path prefix %q must start with /", rw.PathPrefix), "")
			}
			if pm == nil || pm.Prefix == "" {
				s.err("spec.rewrite.pathPrefix", "pathPrefix needs a prefix path match to replace",
					"set spec.match.path.prefix, or use rewrite.path to replace the whole path")
			}
		}
		if rw.Host != "" && !validAuthority(rw.Host) {
			s.err("spec.rewrite.host", fmt.Sprintf("%q is not a valid host or host:port", rw.Host), "")
		}
	}
}

func (s scope) routeHost(p, h string) {
	switch {
	case h == "*":
		return
	case strings.Contains(h, ":") && !strings.HasPrefix(h, "["):
		if _, err := netip.ParseAddr(h); err == nil {
			s.err(p, fmt.Sprintf("host %q: write IPv6 addresses in brackets", h), fmt.Sprintf("[%s]", h))
		} else {
			s.err(p, fmt.Sprintf("host %q must not include a port", h), "the port is ignored when matching hosts")
		}
	case strings.HasPrefix(h, "["):
		inner, ok := strings.CutSuffix(h[1:], "]")
		if a, err := netip.ParseAddr(inner); !ok || err != nil || !a.Is6() {
			s.err(p, fmt.Sprintf("host %q is not a valid bracketed IPv6 address", h), "")
		}
	case strings.Contains(h, "*"):
		rest, ok := strings.CutPrefix(h, "*.")
		if !ok || strings.Contains(rest, "*") {
			s.err(p, fmt.Sprintf("host %q has a wildcard in the wrong place", h),
				`a wildcard may only be the whole first label, e.g. "*.example.com"`)
		} else if !validHostname(rest) {
			s.err(p, fmt.Sprintf("host %q is not a valid host name", h), "")
		}
	case !validHost(h):
		s.err(p, fmt.Sprintf("host %q is not a valid host name", h), "")
	}
}

func validAuthority(a string) bool {
	if host, port, err := net.SplitHostPort(a); err == nil {
		n, err := strconv.Atoi(port)
		return err == nil && n >= 1 && n <= 65535 && validHost(host)
	}
	return validHost(a)
}

func (s scope) pathMatch(pm *v1alpha1.PathMatch) {
	const p = "spec.match.path"
	var set []string
	if pm.Exact != "" {
		set = append(set, "exact")
	}
	if pm.Prefix != "" {
		set = append(set, "prefix")
	}
	if pm.Regex != "" {
		set = append(set, "regex")
	}
	switch len(set) {
	case 0:
		s.err(p, "a path match needs one of exact, prefix or regex", "remove path to match every path")
	case 1:
	default:
		s.err(p, "set only one of exact, prefix or regex, found "+strings.Join(set, " and "), "")
	}
	if pm.Exact != "" && !strings.HasPrefix(pm.Exact, "/") {
		s.err(p+".exact", fmt.Sprintf("path %q must start with /", pm.Exact), "")
	}
	if pm.Prefix != "" && !strings.HasPrefix(pm.Prefix, "/") {
		s.err(p+".prefix", fmt.Sprintf("prefix %q must start with /", pm.Prefix), "")
	}
	if pm.Regex != "" {
		s.regex(p+".regex", pm.Regex)
	}
}

func (s scope) regex(p, re string) {
	if _, err := regexp.Compile(re); err != nil {
		s.err(p, "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "),
			"RE2 syntax; the expression must match the whole value")
	}
}

func (s scope) headerMatch(p string, h v1alpha1.HeaderMatch) {
	name := strings.TrimPrefix(h.Name, ":")
	switch {
	case h.Name == "":
		s.err(p+".name", "header name is required", "")
	case !httpguts.ValidHeaderFieldName(name):
		s.err(p+".name", fmt.Sprintf("%q is not a valid header name", h.Name), "")
	}
	var set []string
	if h.Exact != "" {
		set = append(set, "exact")
	}
	if h.Regex != "" {
		set = append(set, "regex")
	}
	if h.Present != nil {
		set = append(set, "present")
	}
	switch len(set) {
	case 0:
		s.err(p, "a header match needs one of exact, regex or present", "present: true requires the header, present: false its absence")
	case 1:
	default:
		s.err(p, "set only one of exact, regex or present, found "+strings.Join(set, " and "), "")
	}
	if h.Regex != "" {
		s.regex(p+".regex", h.Regex)
	}
}

// clusterRef checks that a route's target exists and is routable.
func (s scope) clusterRef(p, name string) {
	if !s.set.complete {
		return // the target may be in a file that could not be parsed
	}
	c, ok := s.set.clusterByName[name]
	if !ok {
		s.err(p, fmt.Sprintf("cluster %q does not exist", name), s.knownClusters(name))
		return
	}
	if c.Spec.Type == v1alpha1.ClusterRedis {
		s.err(p, fmt.Sprintf("cluster %q is a redis cluster, which cannot receive routed traffic", name),
			"route to a static or dns cluster")
	}
}

func (s scope) knownClusters(name string) string {
	var names []string
	for _, c := range s.set.clusters {
		if c.obj.Spec.Type != v1alpha1.ClusterRedis && c.obj.Metadata.Name != "" {
			names = append(names, c.obj.Metadata.Name)
		}
	}
	if len(names) == 0 {
		return "no routable Cluster is declared; add one"
	}
	return hintJoin(didYouMean(name, names), "known clusters: "+listSome(names, 10))
}

// listSome joins up to n names, saying how many more there are.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}
