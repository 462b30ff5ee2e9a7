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

// maxMetricNames bounds a MetricNames cache: consumers come from a request
// header, so their number is not the plugin's to bound. A full cache is
// emptied.
const maxMetricNames = 256

// MetricNames caches ConsumerMetric names per route, cluster, model,
// consumer and counter, so a request does not build the same string again.
// The zero value is ready; keep one per configuration (the guest is
// single-threaded).
type MetricNames struct {
	names map[metricNameKey]string
}

type metricNameKey struct {
	route, cluster, model, consumer, counter string
}

// Consumer returns ConsumerMetric(ctx, model, consumer, counter), from the
// cache when it was built before.
func (m *MetricNames) Consumer(ctx *Context, model, consumer, counter string) string {
	k := metricNameKey{ctx.RouteName(), ctx.ClusterName(), model, consumer, counter}
	if s, ok := m.names[k]; ok {
		return s
	}
	s := ConsumerMetric(ctx, model, consumer, counter)
	if m.names == nil || len(m.names) >= maxMetricNames {
		m.names = make(map[metricNameKey]string)
	}
	m.names[k] = s
	return s
}
