package pdk

import "github.com/higress-group/proxy-wasm-go-sdk/proxywasm"

// This file is plugin metrics: counters defined with the host on first use
// and cached by name (plugins-B.md §0.6). Envoy exposes them with its
// wasm custom-stat prefix; Sluice as its plugin metrics.

var counters = map[string]proxywasm.MetricCounter{}

// IncrementCounter adds delta to the counter name, defining it with the
// host the first time.
func IncrementCounter(name string, delta uint64) {
	m, ok := counters[name]
	if !ok {
		m = proxywasm.DefineCounterMetric(name)
		counters[name] = m
	}
	m.Increment(delta)
}

// ConsumerMetric is Higress's name for a per-request counter of the AI
// plugins: route.<route>.upstream.<cluster>.model.<model>.consumer.<consumer>.metric.<name>,
// with "-" for an unknown route or cluster, "none" for no model or
// consumer. Dashboards and tag-extraction rules written for Higress match
// it.
func ConsumerMetric(ctx *Context, model, consumer, name string) string {
	route, cluster := ctx.RouteName(), ctx.ClusterName()
	if route == "" {
		route = "-"
	}
	if cluster == "" {
		cluster = "-"
	}
	if model == "" {
		model = "none"
	}
	if consumer == "" {
		consumer = "none"
	}
	return "route." + route + ".upstream." + cluster + ".model." + model + ".consumer." + consumer + ".metric." + name
}
