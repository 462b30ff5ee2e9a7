package main

import "github.com/sluicegw/sluice/pdk"

// This file names the plugin's counters: Higress's naming (no model:
// route.<route>.upstream.<cluster>.model.none.consumer.<consumer>.metric.<name>),
// built once per route, cluster, consumer and counter and then reused.

// maxMetricNames bounds the cache: consumers come from a request header,
// so their number is not ours to bound. A full cache is emptied.
const maxMetricNames = 256

// metricNames caches counter names. The guest is single-threaded; one
// value per configuration.
type metricNames struct {
	names map[metricKey]string
}

type metricKey struct {
	route, cluster, consumer, counter string
}

// name returns the counter name of counter for the request's route and
// cluster and consumer ("" for none).
func (m *metricNames) name(ctx *pdk.Context, consumer, counter string) string {
	k := metricKey{ctx.RouteName(), ctx.ClusterName(), consumer, counter}
	if s, ok := m.names[k]; ok {
		return s
	}
	s := pdk.ConsumerMetric(ctx, "", consumer, counter)
	if m.names == nil || len(m.names) >= maxMetricNames {
		m.names = make(map[metricKey]string)
	}
	m.names[k] = s
	return s
}
