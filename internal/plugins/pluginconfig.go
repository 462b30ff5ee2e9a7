package plugins

import (
	"encoding/json"
	"fmt"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// buildConfig renders the JSON Higress's controller hands the plugin
// (spec/host.md §5.3). deploy is false when no configuration applies at
// all (default disabled and no rule).
func buildConfig(spec *v1alpha1.WasmPluginSpec) (cfg []byte, deploy bool, err error) {
	if spec.PluginConfig != nil {
		b, err := json.Marshal(spec.PluginConfig)
		return b, true, err
	}
	out := map[string]any{}
	global := !spec.DefaultConfigDisable
	if global {
		for k, v := range spec.DefaultConfig {
			out[k] = v
		}
	}
	var rules []any
	for i, r := range spec.MatchRules {
		if r.ConfigDisable {
			continue
		}
		if len(r.Ingress) == 0 && len(r.Domain) == 0 && len(r.Service) == 0 {
			return nil, false, fmt.Errorf("matchRules[%d] has no ingress, domain or service", i)
		}
		rule := map[string]any{}
		for k, v := range r.Config {
			rule[k] = v
		}
		if len(r.Ingress) > 0 {
			rule["_match_route_"] = r.Ingress
		}
		if len(r.Domain) > 0 {
			rule["_match_domain_"] = r.Domain
		}
		if len(r.Service) > 0 {
			rule["_match_service_"] = r.Service
		}
		rules = append(rules, rule)
	}
	if len(rules) > 0 {
		out["_rules_"] = rules
	}
	if !global && len(rules) == 0 {
		return nil, false, nil
	}
	if global && len(out) == 0 && len(spec.DefaultConfig) == 0 && len(rules) == 0 {
		// An empty global config: "enabled with zero-value config".
		return []byte("{}"), true, nil
	}
	b, err := json.Marshal(out)
	return b, true, err
}
