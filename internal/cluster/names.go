package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// How plugins name clusters (spec/host.md §3.5):
//
//	<name>                                   plain
//	<name>:<port>                            port must equal the cluster's
//	outbound|<port>|<subset>|<fqdn>          subset ignored
//
// The fqdn is first matched exactly against cluster names, then with the
// Higress registry suffixes understood:
//
//	<name>.static, <name>.dns                → <name>
//	<svc>.<ns>.svc.cluster.local             → <svc> in metadata.namespace <ns>
//	                                           (no namespace counts as "default")
//	<svc>.<datacenter>.consul                → <svc>
//	<svc>.<group>.<namespaceID>.nacos[-ext]  → <svc>
//
// A Redis callout may append "?db=N&…"; the query is ignored here.

const (
	outboundPrefix = "outbound|"
	k8sSuffix      = ".svc.cluster.local"
	maxKnownNames  = 20
)

// nameIndex resolves every form above. It is built once and read-only
// afterwards; a successful lookup allocates nothing.
type nameIndex struct {
	byName  map[string][]*Cluster // metadata.name → clusters (several only across namespaces)
	byEnvoy map[string]*Cluster   // outbound|<port>||<name> → cluster, for unique names
	known   string                // names for error messages
}

func newNameIndex(clusters []*Cluster) nameIndex {
	x := nameIndex{
		byName:  make(map[string][]*Cluster, len(clusters)),
		byEnvoy: make(map[string]*Cluster, len(clusters)),
	}
	for _, c := range clusters {
		x.byName[c.name] = append(x.byName[c.name], c)
	}
	names := make([]string, 0, len(x.byName))
	for name, list := range x.byName {
		names = append(names, name)
		if len(list) == 1 {
			x.byEnvoy[list[0].envoyName] = list[0]
		}
	}
	slices.Sort(names)
	if len(names) > maxKnownNames {
		names = append(names[:maxKnownNames:maxKnownNames], "…")
	}
	x.known = strings.Join(names, ", ")
	return x
}

func (x *nameIndex) lookup(name string) (*Cluster, error) {
	if c, ok := x.byEnvoy[name]; ok {
		return c, nil
	}
	ref := name
	if i := strings.IndexByte(ref, '?'); i >= 0 {
		ref = ref[:i]
	}
	host, port, problem := splitRef(ref)
	if problem != "" {
		return nil, fmt.Errorf("%w %q: %s", ErrUnknownCluster, name, problem)
	}
	c, err := x.find(name, host)
	if err != nil {
		return nil, err
	}
	if port != 0 && port != c.port {
		return nil, fmt.Errorf("%w %q: port %d does not match cluster %s's port %d",
			ErrUnknownCluster, name, port, c.displayName(), c.port)
	}
	return c, nil
}

// splitRef splits a reference into the host part and the port (0 when the
// reference carries none). problem is non-empty when the reference is
// malformed.
func splitRef(ref string) (host string, port int, problem string) {
	if rest, ok := strings.CutPrefix(ref, outboundPrefix); ok {
		portText, rest, ok1 := strings.Cut(rest, "|")
		_, fqdn, ok2 := strings.Cut(rest, "|") // subset ignored
		if !ok1 || !ok2 || fqdn == "" || strings.IndexByte(fqdn, '|') >= 0 {
			return "", 0, "malformed Envoy cluster name (want outbound|<port>|<subset>|<name>)"
		}
		p, err := strconv.Atoi(portText)
		if err != nil || p < 1 || p > 65535 {
			return "", 0, "port " + strconv.Quote(portText) + " is not a number in 1..65535"
		}
		return fqdn, p, ""
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		p, err := strconv.Atoi(ref[i+1:])
		if err != nil || p < 1 || p > 65535 {
			return "", 0, "port " + strconv.Quote(ref[i+1:]) + " is not a number in 1..65535"
		}
		ref = ref[:i]
		port = p
	}
	if ref == "" {
		return "", 0, "empty name"
	}
	return ref, port, ""
}

// find resolves a host part: exact cluster name first, then the suffix
// forms. ref is the whole reference, for error messages.
func (x *nameIndex) find(ref, host string) (*Cluster, error) {
	if list := x.byName[host]; len(list) > 0 {
		return x.one(ref, list, host)
	}
	if svc, ok := strings.CutSuffix(host, k8sSuffix); ok {
		i := strings.LastIndexByte(svc, '.')
		if i > 0 {
			return x.k8s(ref, svc[:i], svc[i+1:])
		}
	}
	for _, suffix := range [...]string{".static", ".dns"} {
		if base, ok := strings.CutSuffix(host, suffix); ok && base != "" {
			return x.one(ref, x.byName[base], base)
		}
	}
	if base, ok := strings.CutSuffix(host, ".consul"); ok {
		if svc := dropLabels(base, 1); svc != "" {
			return x.one(ref, x.byName[svc], svc)
		}
	}
	for _, suffix := range [...]string{".nacos", ".nacos-ext"} {
		if base, ok := strings.CutSuffix(host, suffix); ok {
			if svc := dropLabels(base, 2); svc != "" {
				return x.one(ref, x.byName[svc], svc)
			}
		}
	}
	return nil, x.notFound(ref, host)
}

// dropLabels removes the last n dot-separated labels; "" if too few.
func dropLabels(s string, n int) string {
	for ; n > 0; n-- {
		i := strings.LastIndexByte(s, '.')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

// one returns the single cluster of list, the clusters named name.
func (x *nameIndex) one(ref string, list []*Cluster, name string) (*Cluster, error) {
	switch len(list) {
	case 1:
		return list[0], nil
	case 0:
		return nil, x.notFound(ref, name)
	default:
		return nil, ambiguous(ref, list[0], list[1])
	}
}

// k8s matches <svc>.<ns>.svc.cluster.local against clusters named svc in
// namespace ns; a cluster without namespace is in "default".
func (x *nameIndex) k8s(ref, svc, ns string) (*Cluster, error) {
	var first, second *Cluster
	for _, c := range x.byName[svc] {
		cns := c.namespace
		if cns == "" {
			cns = "default"
		}
		if cns != ns {
			continue
		}
		if first == nil {
			first = c
		} else if second == nil {
			second = c
		}
	}
	switch {
	case second != nil:
		return nil, ambiguous(ref, first, second)
	case first != nil:
		return first, nil
	}
	if list := x.byName[svc]; len(list) > 0 {
		return nil, fmt.Errorf("%w %q: cluster %s is not in namespace %q (set its metadata.namespace)",
			ErrUnknownCluster, ref, list[0].displayName(), ns)
	}
	return nil, x.notFound(ref, svc)
}

func ambiguous(ref string, a, b *Cluster) error {
	return fmt.Errorf("%w %q: ambiguous, matches clusters %s and %s (name one by <name>.<namespace>.svc.cluster.local)",
		ErrUnknownCluster, ref, a.displayName(), b.displayName())
}

// notFound reports that no cluster is named name (ref with port and
// suffixes removed).
func (x *nameIndex) notFound(ref, name string) error {
	if x.known == "" {
		return fmt.Errorf("%w %q: no cluster is named %q (no clusters are configured)", ErrUnknownCluster, ref, name)
	}
	return fmt.Errorf("%w %q: no cluster is named %q (known: %s)", ErrUnknownCluster, ref, name, x.known)
}
