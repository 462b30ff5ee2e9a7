package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// This file is the configuration: Higress's field names, decoded strictly,
// validated into a compiled form (one window per limit, compiled regexps
// and CIDRs) and the Redis client.

// Defaults of the optional fields.
const (
	defaultRejectedCode = 429
	defaultRejectedMsg  = "Too many requests"
)

// The window fields, in the order they are named in errors.
var windowFields = []struct {
	name    string
	seconds int64
}{
	{"token_per_second", 1},
	{"token_per_minute", 60},
	{"token_per_hour", 3600},
	{"token_per_day", 86400},
}

// window is the set of token_per_* fields of global_threshold and of a
// limit_keys entry. Pointers tell an absent field from an explicit 0.
type window struct {
	TokenPerSecond *int64 `json:"token_per_second"`
	TokenPerMinute *int64 `json:"token_per_minute"`
	TokenPerHour   *int64 `json:"token_per_hour"`
	TokenPerDay    *int64 `json:"token_per_day"`
}

// limit is a resolved window: at most count tokens per seconds.
type limit struct {
	count   int64
	seconds int64
}

// resolve checks that exactly one window field is set, to a positive
// value, and returns it; field is the path of the object for errors.
func (w window) resolve(field string) (limit, pdk.ConfigErrors) {
	values := []*int64{w.TokenPerSecond, w.TokenPerMinute, w.TokenPerHour, w.TokenPerDay}
	var set []string
	var out limit
	var errs pdk.ConfigErrors
	for i, v := range values {
		if v == nil {
			continue
		}
		f := windowFields[i]
		set = append(set, f.name)
		if *v <= 0 {
			errs = append(errs, pdk.Errorf(joinPath(field, f.name), "must be a positive integer, got %d", *v))
			continue
		}
		out = limit{count: *v, seconds: f.seconds}
	}
	switch {
	case len(set) == 0:
		errs = append(errs, pdk.Errorf(field, "one of token_per_second, token_per_minute, token_per_hour or token_per_day must be set"))
	case len(set) > 1:
		errs = append(errs, pdk.Errorf(field, "only one of token_per_second, token_per_minute, token_per_hour or token_per_day may be set, found %s (use one rule_items entry per window)", strings.Join(set, " and ")))
	}
	return out, errs
}

// limitKey is one entry of a rule item's limit_keys.
type limitKey struct {
	Key string `json:"key"`
	window
}

// ruleItem is one entry of rule_items: exactly one selector and its keys.
type ruleItem struct {
	LimitByHeader      *string    `json:"limit_by_header"`
	LimitByParam       *string    `json:"limit_by_param"`
	LimitByCookie      *string    `json:"limit_by_cookie"`
	LimitByConsumer    *string    `json:"limit_by_consumer"`
	LimitByPerHeader   *string    `json:"limit_by_per_header"`
	LimitByPerParam    *string    `json:"limit_by_per_param"`
	LimitByPerCookie   *string    `json:"limit_by_per_cookie"`
	LimitByPerConsumer *string    `json:"limit_by_per_consumer"`
	LimitByPerIP       *string    `json:"limit_by_per_ip"`
	LimitKeys          []limitKey `json:"limit_keys"`
}

// config is the plugin configuration (Higress's field names).
type config struct {
	RuleName        string           `json:"rule_name"`
	GlobalThreshold *window          `json:"global_threshold"`
	RuleItems       []ruleItem       `json:"rule_items"`
	RejectedCode    int              `json:"rejected_code"`
	RejectedMsg     string           `json:"rejected_msg"`
	Redis           *pdk.RedisConfig `json:"redis"`

	global  *target // global_threshold, resolved
	items   []item  // rule_items, compiled
	client  *pdk.RedisClient
	metrics pdk.MetricNames
}

// SetDefaults fills the optional fields.
func (c *config) SetDefaults() {
	c.RejectedCode = defaultRejectedCode
	c.RejectedMsg = defaultRejectedMsg
}

// Validate checks every field, reporting all problems at once, and builds
// the compiled limits and the Redis client (not yet initialised: see
// parseConfig).
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	if c.Redis == nil {
		errs = append(errs, pdk.Errorf("redis", `is required (e.g. {"service_name": "redis.static", "service_port": 6379})`))
	} else if client, err := pdk.NewRedisClient(*c.Redis); err != nil {
		errs = append(errs, pdk.FieldErrors(pdk.PrefixErrors("redis", err))...)
	} else {
		c.client = client
	}
	if strings.TrimSpace(c.RuleName) == "" {
		errs = append(errs, pdk.Errorf("rule_name", "is required (it names the limit in its Redis keys)"))
	}
	if c.RejectedCode < 100 || c.RejectedCode > 599 {
		errs = append(errs, pdk.Errorf("rejected_code", "must be an HTTP status from 100 to 599, not %d", c.RejectedCode))
	}
	switch {
	case c.GlobalThreshold != nil && c.RuleItems != nil:
		errs = append(errs, pdk.Errorf("", "global_threshold and rule_items cannot be set at the same time (use one of them)"))
	case c.GlobalThreshold == nil && c.RuleItems == nil:
		errs = append(errs, pdk.Errorf("", "one of global_threshold or rule_items must be set"))
	case c.GlobalThreshold != nil:
		l, es := c.GlobalThreshold.resolve("global_threshold")
		errs = append(errs, es...)
		c.global = newTarget(keyPrefix+c.RuleName+":global_threshold:"+strconv.FormatInt(l.seconds, 10), l)
	case len(c.RuleItems) == 0:
		errs = append(errs, pdk.Errorf("rule_items", "must not be empty"))
	default:
		for i, ri := range c.RuleItems {
			it, es := ri.compile(fmt.Sprintf("rule_items[%d]", i), c.RuleName)
			errs = append(errs, es...)
			c.items = append(c.items, it)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// parseConfig decodes one configuration and initialises its Redis client
// with the host (a failed init is retried by the first command).
func parseConfig(raw []byte) (*config, error) {
	c, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return nil, err
	}
	_ = c.client.Init()
	return c, nil
}

// Selector types, as they appear in Redis keys.
const (
	byHeader      = "limit_by_header"
	byParam       = "limit_by_param"
	byCookie      = "limit_by_cookie"
	byConsumer    = "limit_by_consumer"
	byPerHeader   = "limit_by_per_header"
	byPerParam    = "limit_by_per_param"
	byPerCookie   = "limit_by_per_cookie"
	byPerConsumer = "limit_by_per_consumer"
	byPerIP       = "limit_by_per_ip"
)

// consumerHeader names the consumer an auth plugin identified.
const consumerHeader = "x-mse-consumer"

// item is a compiled rule item.
type item struct {
	typ string // one of the by* constants
	// name is the header, param or cookie name; x-mse-consumer for the
	// consumer types; the selector text (from-header-…, from-remote-addr)
	// for per-IP. It is the key name in Redis keys.
	name string
	// ipHeader is the header a from-header-<h> per-IP item reads ("" for
	// from-remote-addr).
	ipHeader string
	// perValue: the item limits each distinct value separately (per()).
	perValue bool
	keys     []matcher
}

// per reports whether the item limits each distinct value separately.
func (it *item) per() bool { return strings.HasPrefix(it.typ, "limit_by_per_") }

// matcher is one compiled limit_keys entry.
type matcher struct {
	text   string         // exact value (non-per types)
	any    bool           // "*"
	re     *regexp.Regexp // "regexp:…"
	prefix netip.Prefix   // per-IP: address or CIDR
	limit  limit
	target *target // the window in Redis, keyed by the item and limit
}

// compile checks one rule item: exactly one selector, a valid key for
// each limit_keys entry, one window each. ruleName starts its keys.
func (ri ruleItem) compile(field, ruleName string) (item, pdk.ConfigErrors) {
	var errs pdk.ConfigErrors
	var it item
	var set []string
	for _, s := range []struct {
		typ string
		v   *string
	}{
		{byHeader, ri.LimitByHeader}, {byParam, ri.LimitByParam}, {byCookie, ri.LimitByCookie},
		{byPerHeader, ri.LimitByPerHeader}, {byPerParam, ri.LimitByPerParam}, {byPerCookie, ri.LimitByPerCookie},
		{byConsumer, ri.LimitByConsumer}, {byPerConsumer, ri.LimitByPerConsumer}, {byPerIP, ri.LimitByPerIP},
	} {
		if s.v == nil {
			continue
		}
		set = append(set, s.typ)
		it.typ, it.name = s.typ, strings.TrimSpace(*s.v)
	}
	switch {
	case len(set) == 0:
		return it, pdk.ConfigErrors{pdk.Errorf(field, "one of limit_by_header, limit_by_param, limit_by_cookie, limit_by_consumer, limit_by_per_header, limit_by_per_param, limit_by_per_cookie, limit_by_per_consumer or limit_by_per_ip must be set")}
	case len(set) > 1:
		return it, pdk.ConfigErrors{pdk.Errorf(field, "only one selector may be set per rule item, found %s (use one rule_items entry each)", strings.Join(set, " and "))}
	}
	sel := joinPath(field, it.typ)
	switch it.typ {
	case byConsumer, byPerConsumer:
		it.name = consumerHeader // the value only marks the selector
	case byPerIP:
		switch {
		case it.name == "from-remote-addr":
		case strings.HasPrefix(it.name, "from-header-"):
			it.ipHeader = strings.TrimPrefix(it.name, "from-header-")
			if it.ipHeader == "" {
				errs = append(errs, pdk.Errorf(sel, "names no header after 'from-header-' (e.g. from-header-x-forwarded-for)"))
			}
		default:
			errs = append(errs, pdk.Errorf(sel, "must be from-header-<header name> or from-remote-addr, not %q", it.name))
		}
	default:
		if it.name == "" {
			errs = append(errs, pdk.Errorf(sel, "must name the %s to limit by", strings.TrimPrefix(strings.TrimPrefix(it.typ, "limit_by_per_"), "limit_by_")))
		}
	}
	if len(ri.LimitKeys) == 0 {
		errs = append(errs, pdk.Errorf(joinPath(field, "limit_keys"), "must have at least one entry ({\"key\": …, \"token_per_minute\": …})"))
	}
	it.perValue = it.per()
	for j, lk := range ri.LimitKeys {
		m, es := it.compileKey(lk, fmt.Sprintf("%s.limit_keys[%d]", field, j))
		errs = append(errs, es...)
		m.target = newTarget(keyPrefix+ruleName+":"+it.typ+":"+strconv.FormatInt(m.limit.seconds, 10)+":"+it.name+":", m.limit)
		it.keys = append(it.keys, m)
	}
	return it, errs
}

// compileKey checks one limit_keys entry against its item's type.
func (it *item) compileKey(lk limitKey, field string) (matcher, pdk.ConfigErrors) {
	var errs pdk.ConfigErrors
	m := matcher{text: lk.Key}
	l, es := lk.window.resolve(field)
	errs = append(errs, es...)
	m.limit = l
	kf := joinPath(field, "key")
	switch {
	case lk.Key == "":
		errs = append(errs, pdk.Errorf(kf, "is required"))
	case it.typ == byPerIP:
		p, err := parseIPOrCIDR(lk.Key)
		if err != nil {
			errs = append(errs, pdk.Errorf(kf, "must be an IP address or a CIDR, not %q", lk.Key))
		}
		m.prefix = p
	case it.per():
		switch {
		case lk.Key == "*":
			m.any = true
		case strings.HasPrefix(lk.Key, "regexp:"):
			re, err := regexp.Compile(strings.TrimPrefix(lk.Key, "regexp:"))
			if err != nil {
				errs = append(errs, pdk.Errorf(kf, "is not a valid regular expression: %v", err))
			}
			m.re = re
		default:
			errs = append(errs, pdk.Errorf(kf, "must be \"*\" or start with \"regexp:\" for %s, not %q (use %s for exact values)", it.typ, lk.Key, strings.Replace(it.typ, "_per_", "_", 1)))
		}
	}
	return m, errs
}

// parseIPOrCIDR reads "10.0.0.1", "10.0.0.0/8" or "::1".
func parseIPOrCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func joinPath(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}
