package pdk

import (
	"strings"
	"testing"
)

// nameConfig is a rule configuration for the envelope tests: {"name": …},
// name required.
type nameConfig struct {
	Name string `json:"name"`
}

func (c *nameConfig) Validate() error {
	if c.Name == "" {
		return Errorf("name", "is required")
	}
	return nil
}

func parseName(raw []byte) (*nameConfig, error) { return DecodeConfig[nameConfig](raw) }

func TestParseEnvelope(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		err      string // all error lines; "" for success
		global   string // expected global name, "-" for none
		rules    int
		pluginID string
		warn     string // substring of the warnings
	}{
		{name: "global only", in: `{"name":"g"}`, global: "g"},
		{name: "plugin id is stripped and kept", in: `{"name":"g","_plugin_id_":"p-1"}`, global: "g", pluginID: "p-1"},
		{name: "empty object parses the global config as {}", in: `{}`, err: "name: is required"},
		{name: "empty input is {}", in: ``, err: "name: is required"},
		{name: "only _plugin_id_ is the empty config", in: `{"_plugin_id_":"x"}`, err: "name: is required"},
		{name: "rules without global", in: `{"_rules_":[{"_match_route_":["r"],"name":"a"}]}`, global: "-", rules: 1},
		{name: "rules and global", in: `{"name":"g","_rules_":[{"_match_domain_":["a.com"],"name":"a"},{"_match_service_":["s.dns"],"name":"b"}]}`, global: "g", rules: 2},
		{name: "a failing rule fails configure, naming it", in: `{"name":"g","_rules_":[{"_match_route_":["r"],"name":"a"},{"_match_route_":["s"]}]}`,
			err: "_rules_[1].name: is required"},
		{name: "rule config errors carry the rule path", in: `{"_rules_":[{"_match_route_":["r"],"name":"a","nmae":"x"}]}`,
			err: `_rules_[0].nmae: unknown field (did you mean "name"?)`},
		{name: "a rule without matcher", in: `{"_rules_":[{"name":"a"}]}`,
			err: "_rules_[0]: has no matcher: set one of _match_route_, _match_domain_, _match_service_ or _match_route_prefix_ (with at least one non-empty entry)"},
		{name: "a rule whose matchers are all empty has none", in: `{"_rules_":[{"_match_route_":[""],"name":"a"}]}`,
			err: "_rules_[0]: has no matcher: set one of _match_route_, _match_domain_, _match_service_ or _match_route_prefix_ (with at least one non-empty entry)"},
		{name: "matcher must be a list of strings", in: `{"_rules_":[{"_match_domain_":"a.com","name":"a"},{"_match_route_":["r",3],"name":"b"}]}`,
			err: "_rules_[0]._match_domain_: must be a list of strings, not a string\n_rules_[1]._match_route_[1]: must be a string, not the number 3"},
		{name: "_rules_ must be a list", in: `{"_rules_":{"name":"a"}}`, err: "_rules_: must be a list of rule objects, not an object"},
		{name: "a rule must be an object", in: `{"_rules_":["x"]}`, err: "_rules_[0]: must be an object, not a string"},
		{name: "envelope keys only at top level", in: `{"_rules_":[{"_match_route_":["r"],"name":"a","_rules_":[]}]}`, err: "_rules_[0]._rules_: is only allowed at the top level"},
		{name: "empty rules and no global", in: `{"_rules_":[]}`, err: "_rules_: is empty and there is no global configuration, so the plugin would never apply"},
		{name: "a bad global config is ignored when rules parse", in: `{"nmae":"g","_rules_":[{"_match_route_":["r"],"name":"a"}]}`,
			global: "-", rules: 1, warn: `global configuration ignored, only _rules_ apply: nmae: unknown field`},
		{name: "a bad global config without rules fails", in: `{"nmae":"g"}`, err: `nmae: unknown field (did you mean "name"?)`},
		{name: "a bad global config is reported with failing rules", in: `{"nmae":"g","_rules_":[{"_match_route_":["r"]}]}`,
			err: "nmae: unknown field (did you mean \"name\"?)\n_rules_[0].name: is required"},
		{name: "lower-precedence matchers are ignored with a warning", in: `{"_rules_":[{"_match_route_":["r"],"_match_domain_":["a.com"],"name":"a"}]}`,
			global: "-", rules: 1, warn: "_rules_[0]: _match_domain_ ignored"},
		{name: "not JSON", in: `{"name":`, err: "not valid JSON: unexpected end of JSON input (at byte 8)"},
		{name: "not an object", in: `["name"]`, err: "must be a JSON object, not a list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := parseEnvelope([]byte(tc.in), parseName)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.err)
				}
				if err.Error() != tc.err {
					t.Fatalf("error:\n%v\nwant:\n%s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			rs := env.set
			switch {
			case tc.global == "-" && rs.hasGlobal:
				t.Errorf("has a global config %+v", rs.global)
			case tc.global != "-" && (!rs.hasGlobal || rs.global.Name != tc.global):
				t.Errorf("global = %+v (has %t), want %q", rs.global, rs.hasGlobal, tc.global)
			}
			if len(rs.rules) != tc.rules {
				t.Errorf("%d rules, want %d", len(rs.rules), tc.rules)
			}
			if env.pluginID != tc.pluginID {
				t.Errorf("plugin id %q, want %q", env.pluginID, tc.pluginID)
			}
			warnings := strings.Join(env.warnings, "\n")
			if tc.warn == "" && warnings != "" || !strings.Contains(warnings, tc.warn) {
				t.Errorf("warnings %q, want %q", warnings, tc.warn)
			}
		})
	}
}

func TestRuleConfigIsIndependentOfGlobal(t *testing.T) {
	type cfg struct {
		A string `json:"a"`
		B string `json:"b"`
	}
	env, err := parseEnvelope([]byte(`{"a":"global-a","b":"global-b","_rules_":[{"_match_route_":["r"],"a":"rule-a"}]}`),
		func(raw []byte) (*cfg, error) { return DecodeConfig[cfg](raw) })
	if err != nil {
		t.Fatal(err)
	}
	if r := env.set.rules[0].config; r.A != "rule-a" || r.B != "" {
		t.Errorf("rule config %+v: rules are not merged with the global config", r)
	}
}
