package gateway

import (
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/cluster"
)

// Route is a compiled route: matchers plus resolved target clusters.
// Routes are immutable and shared by every stream of a generation.
type Route struct {
	// Name is the route_name plugins see ("name" or "namespace/name").
	Name string
	Spec *v1alpha1.RouteSpec

	hosts    []hostMatcher
	path     pathMatcher
	methods  []string
	headers  []headerMatcher
	targets  []weightedTarget
	total    int
	rank     routeRank
	declared int
}

type weightedTarget struct {
	cluster *cluster.Cluster
	weight  int
}

// Timeout is the wait for upstream response headers on this route.
func (r *Route) Timeout(c *cluster.Cluster) time.Duration {
	if r.Spec.Timeout.Duration > 0 {
		return r.Spec.Timeout.Duration
	}
	if c != nil && c.Spec().RequestTimeout.Duration > 0 {
		return c.Spec().RequestTimeout.Duration
	}
	return 60 * time.Second
}

// pickCluster chooses the target cluster (weighted when split).
func (r *Route) pickCluster() *cluster.Cluster {
	if len(r.targets) == 1 {
		return r.targets[0].cluster
	}
	n := rand.IntN(r.total)
	for _, t := range r.targets {
		if n < t.weight {
			return t.cluster
		}
		n -= t.weight
	}
	return r.targets[len(r.targets)-1].cluster
}

// rewritePath applies spec.rewrite to a path+query.
func (r *Route) rewritePath(pathQuery string) string {
	rw := r.Spec.Rewrite
	if rw == nil || (rw.Path == "" && rw.PathPrefix == "") {
		return pathQuery
	}
	p, q, hasQ := strings.Cut(pathQuery, "?")
	switch {
	case rw.Path != "":
		p = rw.Path
	case r.path.kind == pathPrefix && strings.HasPrefix(p, r.path.value):
		rest := p[len(r.path.value):]
		p = rw.PathPrefix + rest
		if p == "" {
			p = "/"
		}
		p = strings.Replace(p, "//", "/", 1)
	}
	if hasQ {
		return p + "?" + q
	}
	return p
}

type hostMatcher struct {
	exact  string // lower case
	suffix string // ".example.com" for "*.example.com"
	any    bool
}

func (m hostMatcher) match(host string) bool {
	switch {
	case m.any:
		return true
	case m.suffix != "":
		return len(host) > len(m.suffix) && strings.HasSuffix(host, m.suffix)
	default:
		return host == m.exact
	}
}

type pathKind int

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
	pathAny
)

type pathMatcher struct {
	kind  pathKind
	value string
	re    *regexp.Regexp
}

func (m pathMatcher) match(path string) bool {
	switch m.kind {
	case pathExact:
		return path == m.value
	case pathPrefix:
		return strings.HasPrefix(path, m.value)
	case pathRegex:
		return m.re.MatchString(path)
	}
	return true
}

type headerMatcher struct {
	name    string
	exact   string
	re      *regexp.Regexp
	present *bool
}

// HeaderSource gives the router read access to request headers.
type HeaderSource interface {
	Get(name string) (string, bool)
}

func (m headerMatcher) match(h HeaderSource) bool {
	v, ok := h.Get(m.name)
	switch {
	case m.present != nil:
		return ok == *m.present
	case !ok:
		return false
	case m.re != nil:
		return m.re.MatchString(v)
	default:
		return v == m.exact
	}
}

// routeRank orders routes from most to least specific: host class (exact,
// wildcard by length, any), then path class (exact, prefix by length,
// regex, any), then the number of extra conditions, then declaration order.
type routeRank struct {
	hostClass int
	hostLen   int
	pathClass pathKind
	pathLen   int
	extra     int
}

// RouteTable matches requests to routes. It is immutable and safe for
// concurrent use.
type RouteTable struct {
	routes []*Route
}

// NewRouteTable compiles routes against the cluster registry. The config
// was validated already; errors here mean a bug upstream, reported anyway.
func NewRouteTable(routes []*v1alpha1.Route, reg *cluster.Registry, routeName func(*v1alpha1.Route) string) (*RouteTable, error) {
	t := &RouteTable{}
	for i, rs := range routes {
		r := &Route{Name: routeName(rs), Spec: &rs.Spec, declared: i}
		if err := r.compile(reg); err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		t.routes = append(t.routes, r)
	}
	sort.SliceStable(t.routes, func(i, j int) bool { return t.routes[i].rank.less(t.routes[j].rank) })
	return t, nil
}

func (a routeRank) less(b routeRank) bool {
	if a.hostClass != b.hostClass {
		return a.hostClass < b.hostClass
	}
	if a.hostLen != b.hostLen {
		return a.hostLen > b.hostLen
	}
	if a.pathClass != b.pathClass {
		return a.pathClass < b.pathClass
	}
	if a.pathLen != b.pathLen {
		return a.pathLen > b.pathLen
	}
	return a.extra > b.extra
}

func (r *Route) compile(reg *cluster.Registry) error {
	s := r.Spec
	r.rank.hostClass = 2
	for _, h := range s.Hosts {
		h = strings.ToLower(h)
		var m hostMatcher
		class, l := 2, 0
		switch {
		case h == "*":
			m.any = true
		case strings.HasPrefix(h, "*."):
			m.suffix = h[1:]
			class, l = 1, len(h)
		case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
			// hostOnly strips the brackets of an IPv6 authority.
			m.exact = h[1 : len(h)-1]
			class, l = 0, len(h)
		default:
			m.exact = h
			class, l = 0, len(h)
		}
		r.hosts = append(r.hosts, m)
		// A route's rank is its least specific host.
		if len(r.hosts) == 1 || class > r.rank.hostClass || (class == r.rank.hostClass && l < r.rank.hostLen) {
			r.rank.hostClass, r.rank.hostLen = class, l
		}
	}
	r.path.kind = pathAny
	if p := s.Match.Path; p != nil {
		switch {
		case p.Exact != "":
			r.path = pathMatcher{kind: pathExact, value: p.Exact}
		case p.Prefix != "":
			r.path = pathMatcher{kind: pathPrefix, value: p.Prefix}
		case p.Regex != "":
			re, err := regexp.Compile("^(?:" + p.Regex + ")$")
			if err != nil {
				return fmt.Errorf("match.path.regex: %w", err)
			}
			r.path = pathMatcher{kind: pathRegex, value: p.Regex, re: re}
		}
	}
	r.rank.pathClass = r.path.kind
	r.rank.pathLen = len(r.path.value)
	for _, m := range s.Match.Methods {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	for _, hm := range s.Match.Headers {
		m := headerMatcher{name: strings.ToLower(hm.Name), exact: hm.Exact, present: hm.Present}
		if hm.Regex != "" {
			re, err := regexp.Compile("^(?:" + hm.Regex + ")$")
			if err != nil {
				return fmt.Errorf("match.headers %s: %w", hm.Name, err)
			}
			m.re = re
		}
		r.headers = append(r.headers, m)
	}
	r.rank.extra = len(r.methods) + len(r.headers)
	add := func(name string, w int) error {
		c, err := reg.Lookup(name)
		if err != nil {
			return err
		}
		r.targets = append(r.targets, weightedTarget{cluster: c, weight: w})
		r.total += w
		return nil
	}
	if s.Cluster != "" {
		if err := add(s.Cluster, 1); err != nil {
			return err
		}
	}
	for _, wc := range s.WeightedClusters {
		if err := add(wc.Cluster, wc.Weight); err != nil {
			return err
		}
	}
	if len(r.targets) == 0 || r.total <= 0 {
		return fmt.Errorf("no target cluster")
	}
	return nil
}

// Match returns the first route, in specificity order, that matches; nil
// when none does. authority may carry a port; path may carry a query.
func (t *RouteTable) Match(authority, path, method string, h HeaderSource) *Route {
	host := hostOnly(authority)
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, r := range t.routes {
		if r.matches(host, path, method, h) {
			return r
		}
	}
	return nil
}

// Routes lists the compiled routes in match order.
func (t *RouteTable) Routes() []*Route { return t.routes }

func (r *Route) matches(host, path, method string, h HeaderSource) bool {
	if len(r.hosts) > 0 {
		ok := false
		for _, m := range r.hosts {
			if m.match(host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if !r.path.match(path) {
		return false
	}
	if len(r.methods) > 0 {
		ok := false
		for _, m := range r.methods {
			if m == method {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, m := range r.headers {
		if !m.match(h) {
			return false
		}
	}
	return true
}

// hostOnly lower-cases an authority and strips its port.
func hostOnly(authority string) string {
	h := authority
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if _, _, err := net.SplitHostPort(h); err == nil {
			h = h[:i]
		}
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// httpHeaderSource adapts an http.Header for matching.
type httpHeaderSource map[string][]string

func (h httpHeaderSource) Get(name string) (string, bool) {
	vs, ok := h[canonicalKey(name)]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}
