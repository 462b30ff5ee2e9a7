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
