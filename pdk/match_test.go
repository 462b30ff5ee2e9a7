package pdk

import "testing"

func TestMatch(t *testing.T) {
	env, err := parseEnvelope([]byte(`{
		"name": "global",
		"_rules_": [
			{"_match_route_": ["route-a", "route-b"], "name": "route"},
			{"_match_route_": ["route-svc"], "_match_service_": ["llm.dns:443"], "name": "route+service"},
			{"_match_domain_": ["api.example.com"], "name": "exact"},
			{"_match_domain_": ["*.example.com"], "name": "suffix"},
			{"_match_domain_": ["internal*"], "name": "prefix"},
			{"_match_domain_": ["[::1]"], "name": "ipv6"},
			{"_match_service_": ["qwen.dns:443"], "name": "service+port"},
			{"_match_service_": ["kimi.dns"], "name": "service"},
			{"_match_route_prefix_": ["ai-"], "name": "route prefix"}
		]}`), parseName)
	if err != nil {
		t.Fatal(err)
	}
	rs := env.set
	if !rs.needRoute || !rs.needCluster {
		t.Errorf("needRoute %t needCluster %t", rs.needRoute, rs.needCluster)
	}
	cases := []struct {
		name, authority, route, cluster string
		want                            string
	}{
		{"route", "x.org", "route-b", "", "route"},
		{"route and service both match", "x.org", "route-svc", "outbound|443||llm.dns", "route+service"},
		{"route matches but not service", "x.org", "route-svc", "outbound|80||llm.dns", "global"},
		{"exact domain, port stripped", "api.example.com:8443", "", "", "exact"},
		{"suffix domain", "chat.example.com", "", "", "suffix"},
		{"first matching rule wins", "api.example.com", "route-a", "", "route"},
		{"prefix domain", "internal-llm.local", "", "", "prefix"},
		{"ipv6 literal keeps its brackets", "[::1]:8080", "", "", "ipv6"},
		{"service with port", "x.org", "", "outbound|443||qwen.dns", "service+port"},
		{"service with the wrong port", "x.org", "", "outbound|80||qwen.dns", "global"},
		{"service without port matches any port", "x.org", "", "outbound|8080||kimi.dns", "service"},
		{"cluster name not in 4 parts", "x.org", "", "kimi.dns", "global"},
		{"route prefix", "x.org", "ai-route-1", "", "route prefix"},
		{"nothing matches: global", "x.org", "other", "outbound|1||other.dns", "global"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok := rs.match(tc.authority, func() string { return tc.route }, func() string { return tc.cluster })
			if !ok || cfg.Name != tc.want {
				t.Errorf("got %+v (ok %t), want %q", cfg, ok, tc.want)
			}
		})
	}
}

func TestMatchWithoutGlobalIsInactive(t *testing.T) {
	env, err := parseEnvelope([]byte(`{"_rules_":[{"_match_domain_":["a.com"],"name":"a"}]}`), parseName)
	if err != nil {
		t.Fatal(err)
	}
	if env.set.needRoute || env.set.needCluster {
		t.Error("domain rules need neither route_name nor cluster_name")
	}
	calls := 0
	prop := func() string { calls++; return "" }
	if _, ok := env.set.match("b.com", prop, prop); ok {
		t.Error("no rule matches and there is no global config: the plugin must not apply")
	}
	if cfg, ok := env.set.match("a.com", prop, prop); !ok || cfg.Name != "a" {
		t.Errorf("got %+v %t", cfg, ok)
	}
	if calls != 0 {
		t.Errorf("properties read %d times for domain rules", calls)
	}
}
