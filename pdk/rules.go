package pdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// This file is the configuration envelope Higress's controller produces
// and wasm-go's matcher reads (plugins-A.md §0.1, plugins-B.md §0.1,
// host.md §3.4), parsed at configure time:
//
//	{ <global config>,
//	  "_plugin_id_": "…",
//	  "_rules_": [ { <rule config>, "_match_route_": [...] }, … ]
//
// match.go picks a configuration per request.

// Reserved keys of the envelope.
const (
	keyPluginID         = "_plugin_id_"
	keyRules            = "_rules_"
	keyMatchRoute       = "_match_route_"
	keyMatchDomain      = "_match_domain_"
	keyMatchService     = "_match_service_"
	keyMatchRoutePrefix = "_match_route_prefix_"
)

// ruleKind is what a rule matches on. wasm-go derives it from the matcher
// keys present, with precedence route(+service) > domain > service >
// route prefix; keys of lower precedence are then ignored.
type ruleKind int

const (
	matchRoute ruleKind = iota
	matchRouteAndService
	matchDomain
	matchService
	matchRoutePrefix
)

type hostPattern struct {
	kind byte // '=' exact, '*' suffix (leading *), '^' prefix (trailing *)
	host string
}

type rule[C any] struct {
	kind     ruleKind
	routes   map[string]struct{}
	hosts    []hostPattern
	services []string
	prefixes []string
	config   C
}

// ruleSet is a parsed envelope: the global configuration, if any, and the
// rules in declaration order.
type ruleSet[C any] struct {
	global    C
	hasGlobal bool
	rules     []rule[C]
	// needRoute / needCluster: some rule reads route_name / cluster_name,
	// so matching has to ask the host for it.
	needRoute, needCluster bool
}

// parsedEnvelope is the result of parseEnvelope.
type parsedEnvelope[C any] struct {
	set      *ruleSet[C]
	pluginID string
	// warnings are problems that do not fail configure (an ignored global
	// configuration, ignored matcher keys).
	warnings []string
}

// parseEnvelope splits raw into the global configuration and _rules_,
// parses each with parse, and reports every problem with its path. The
// result is never nil (its pluginID names the plugin in error logs); its
// set is only meaningful without error. Rules
// are independent configurations: they are not merged with the global one.
func parseEnvelope[C any](raw []byte, parse func([]byte) (C, error)) (*parsedEnvelope[C], error) {
	out := &parsedEnvelope[C]{set: &ruleSet[C]{}}
	rs := out.set
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if !gjson.ValidBytes(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return out, ConfigErrors{{Problem: "not valid JSON: " + jsonErrorText(err)}}
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		return out, ConfigErrors{{Problem: "must be a JSON object, not " + gjsonKind(root)}}
	}

	var errs ConfigErrors
	var rulesJSON gjson.Result
	hasRules := false
	var global objectBuilder
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.String() {
		case keyPluginID:
			out.pluginID = v.String()
		case keyRules:
			rulesJSON, hasRules = v, true
		default:
			global.add(k, v)
		}
		return true
	})

	// {} (or only _plugin_id_) enables the plugin globally with the
	// defaults; a global part next to _rules_ is parsed only if it has keys.
	var globalErr error
	if !hasRules || global.n > 0 {
		cfg, err := parse(global.bytes())
		if err != nil {
			globalErr = err
		} else {
			rs.global, rs.hasGlobal = cfg, true
		}
	}
	if !hasRules {
		if globalErr != nil {
			return out, FieldErrors(globalErr)
		}
		return out, nil
	}

	if !rulesJSON.IsArray() {
		return out, ConfigErrors{{Field: keyRules, Problem: "must be a list of rule objects, not " + gjsonKind(rulesJSON)}}
	}
	for i, rj := range rulesJSON.Array() {
		path := fmt.Sprintf("%s[%d]", keyRules, i)
		r, warn, err := parseRule(path, rj, parse)
		if err != nil {
			errs = append(errs, FieldErrors(err)...)
			continue
		}
		if warn != "" {
			out.warnings = append(out.warnings, warn)
		}
		rs.needRoute = rs.needRoute || r.kind == matchRoute || r.kind == matchRouteAndService || r.kind == matchRoutePrefix
		rs.needCluster = rs.needCluster || r.kind == matchService || r.kind == matchRouteAndService
		rs.rules = append(rs.rules, r)
	}
	if len(errs) > 0 {
		if globalErr != nil {
			errs = append(FieldErrors(globalErr), errs...)
		}
		return out, errs
	}
	if len(rs.rules) == 0 && !rs.hasGlobal {
		if globalErr != nil {
			return out, FieldErrors(globalErr)
		}
		return out, ConfigErrors{{Field: keyRules, Problem: "is empty and there is no global configuration, so the plugin would never apply"}}
	}
	if globalErr != nil {
		// wasm-go tolerates a global configuration that fails to parse as
		// long as the rules parse: the plugin then applies to matching
		// requests only. Say so loudly.
		for _, e := range FieldErrors(globalErr) {
			out.warnings = append(out.warnings, "global configuration ignored, only _rules_ apply: "+e.Error())
		}
	}
	return out, nil
}

// parseRule reads one rule object: its matchers and its own configuration
// (the object without the matcher keys).
func parseRule[C any](path string, rj gjson.Result, parse func([]byte) (C, error)) (rule[C], string, error) {
	var r rule[C]
	if !rj.IsObject() {
		return r, "", Errorf(path, "must be an object, not %s", gjsonKind(rj))
	}
	var errs ConfigErrors
	var cfg objectBuilder
	var routes, domains, services, prefixes []string
	rj.ForEach(func(k, v gjson.Result) bool {
		key := k.String()
		var dst *[]string
		switch key {
		case keyMatchRoute:
			dst = &routes
		case keyMatchDomain:
			dst = &domains
		case keyMatchService:
			dst = &services
		case keyMatchRoutePrefix:
			dst = &prefixes
		case keyPluginID, keyRules:
			errs = append(errs, Errorf(path+"."+key, "is only allowed at the top level"))
			return true
		default:
			cfg.add(k, v)
			return true
		}
		list, err := stringList(path+"."+key, v)
		if err != nil {
			errs = append(errs, FieldErrors(err)...)
		}
		*dst = list
		return true
	})
	var ignored []string
	switch {
	case len(routes) > 0 && len(services) > 0:
		r.kind = matchRouteAndService
		ignored = nonEmpty(keyMatchDomain, domains, keyMatchRoutePrefix, prefixes)
	case len(routes) > 0:
		r.kind = matchRoute
		ignored = nonEmpty(keyMatchDomain, domains, keyMatchRoutePrefix, prefixes)
	case len(domains) > 0:
		r.kind = matchDomain
		ignored = nonEmpty(keyMatchService, services, keyMatchRoutePrefix, prefixes)
	case len(services) > 0:
		r.kind = matchService
		ignored = nonEmpty(keyMatchRoutePrefix, prefixes)
	case len(prefixes) > 0:
		r.kind = matchRoutePrefix
	default:
		if len(errs) == 0 {
			errs = append(errs, Errorf(path, "has no matcher: set one of %s, %s, %s or %s (with at least one non-empty entry)",
				keyMatchRoute, keyMatchDomain, keyMatchService, keyMatchRoutePrefix))
		}
	}
	if len(routes) > 0 {
		r.routes = make(map[string]struct{}, len(routes))
		for _, s := range routes {
			r.routes[s] = struct{}{}
		}
	}
	for _, d := range domains {
		switch {
		case strings.HasPrefix(d, "*"):
			r.hosts = append(r.hosts, hostPattern{'*', d[1:]})
		case strings.HasSuffix(d, "*"):
			r.hosts = append(r.hosts, hostPattern{'^', d[:len(d)-1]})
		default:
			r.hosts = append(r.hosts, hostPattern{'=', d})
		}
	}
	r.services, r.prefixes = services, prefixes
	config, err := parse(cfg.bytes())
	if err != nil {
		errs = append(errs, FieldErrors(PrefixErrors(path, err))...)
	}
	if len(errs) > 0 {
		return r, "", errs
	}
	r.config = config
	warn := ""
	if len(ignored) > 0 {
		warn = fmt.Sprintf("%s: %s ignored: a rule matches on one kind (route, route+service, domain, service, route prefix, in that precedence)",
			path, strings.Join(ignored, " and "))
	}
	return r, warn, nil
}

// stringList reads a matcher: a list of strings; empty strings are dropped
// (as wasm-go drops them).
func stringList(path string, v gjson.Result) ([]string, error) {
	if !v.IsArray() {
		return nil, Errorf(path, "must be a list of strings, not %s", gjsonKind(v))
	}
	var out []string
	var errs ConfigErrors
	for i, e := range v.Array() {
		if e.Type != gjson.String {
			errs = append(errs, Errorf(fmt.Sprintf("%s[%d]", path, i), "must be a string, not %s", gjsonKind(e)))
			continue
		}
		if s := e.String(); s != "" {
			out = append(out, s)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func nonEmpty(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if l := pairs[i+1].([]string); len(l) > 0 {
			out = append(out, pairs[i].(string))
		}
	}
	return out
}

// objectBuilder re-assembles a JSON object from some of another object's
// members, keeping their bytes as written.
type objectBuilder struct {
	b []byte
	n int
}

func (o *objectBuilder) add(k, v gjson.Result) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = append(o.b, k.Raw...)
	o.b = append(o.b, ':')
	o.b = append(o.b, v.Raw...)
	o.n++
}

func (o *objectBuilder) bytes() []byte {
	if o.n == 0 {
		return []byte("{}")
	}
	return append(o.b, '}')
}

func gjsonKind(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "the number " + v.Raw
	case gjson.True, gjson.False:
		return v.Raw
	case gjson.Null:
		return "null"
	}
	if v.IsArray() {
		return "a list"
	}
	return "an object"
}
