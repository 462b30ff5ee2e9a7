package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// durationBuckets are the histogram bucket bounds, in seconds, of every
// latency metric. They span 1ms (a cached answer, a local reply) to 5min
// (a long streamed completion): LLM traffic is spread over five orders of
// magnitude, so the default client_golang buckets (which stop at 10s) would
// put every streamed request into +Inf.
var durationBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300,
}

// Upstream error kinds accepted by [Metrics.UpstreamError].
const (
	UpstreamErrorConnect = "connect"
	UpstreamErrorTimeout = "timeout"
	UpstreamErrorReset   = "reset"
	UpstreamErrorOther   = "other"
)

// codeClasses maps status/100 to its label value; index 0 covers statuses
// outside 100..599 (most often 0: the client went away before a response).
var codeClasses = [...]string{"unknown", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics holds the gateway's Prometheus metrics. All of them are registered
// on the registry given to [NewMetrics].
//
// A Metrics is safe for concurrent use by any number of goroutines.
type Metrics struct {
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	upstreamDuration *prometheus.HistogramVec
	ttfb             *prometheus.HistogramVec
	bytesIn          *prometheus.CounterVec
	bytesOut         *prometheus.CounterVec
	endpointHealthy  *prometheus.GaugeVec
	upstreamErrors   *prometheus.CounterVec
}

// NewMetrics creates the gateway's metrics and registers them on reg.
// It panics if reg already holds metrics of the same names, as
// prometheus.MustRegister does: that is a programming error (one Metrics per
// registry), not a runtime condition.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total",
			Help: "Requests completed, by route, cluster and status code class (1xx..5xx, unknown when no status was sent).",
		}, []string{"route", "cluster", "code_class"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_http_request_duration_seconds",
			Help:    "Time from the first byte of a request to the last byte of its response, by route.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_http_requests_in_flight",
			Help: "Requests currently being served.",
		}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_upstream_request_duration_seconds",
			Help:    "Time spent on the upstream exchange, by cluster.",
			Buckets: durationBuckets,
		}, []string{"cluster"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_http_time_to_first_byte_seconds",
			Help:    "Time from the start of a request to the first response byte sent to the client, by route.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_request_bytes_total",
			Help: "Request body bytes received from clients, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_response_bytes_total",
			Help: "Response body bytes sent to clients, by route.",
		}, []string{"route"}),
		endpointHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_upstream_endpoint_healthy",
			Help: "Whether an upstream endpoint is healthy (1) or not (0), by cluster and endpoint.",
		}, []string{"cluster", "endpoint"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upstream_errors_total",
			Help: "Failed upstream exchanges, by cluster and kind (connect, timeout, reset, other).",
		}, []string{"cluster", "kind"}),
	}
	reg.MustRegister(
		m.requests, m.requestDuration, m.inFlight, m.upstreamDuration, m.ttfb,
		m.bytesIn, m.bytesOut, m.endpointHealthy, m.upstreamErrors,
	)
	return m
}

// NewRegistry returns a fresh registry holding the Go runtime and process
// collectors, for the binary to pass to [NewMetrics] and to the admin
// server's /metrics. Tests use prometheus.NewRegistry directly.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// RequestStarted counts a request as in flight. Every call must be matched by
// one [Metrics.RequestFinished].
func (m *Metrics) RequestStarted() { m.inFlight.Inc() }

// RequestFinished takes a request out of the in-flight gauge and records it:
// the request counter (route, cluster, code class), the request duration,
// bytes in and out and, when known, the time to first byte (only when
// r.TimeToFirstByte > 0: a request that never sent a byte has none) and the
// upstream duration (only when r.UpstreamDuration > 0: a local reply never
// reached an upstream).
func (m *Metrics) RequestFinished(r *Record) {
	m.inFlight.Dec()
	m.requests.WithLabelValues(r.Route, r.Cluster, codeClass(r.Status)).Inc()
	m.requestDuration.WithLabelValues(r.Route).Observe(r.Duration.Seconds())
	if r.TimeToFirstByte > 0 {
		m.ttfb.WithLabelValues(r.Route).Observe(r.TimeToFirstByte.Seconds())
	}
	if r.UpstreamDuration > 0 {
		m.upstreamDuration.WithLabelValues(r.Cluster).Observe(r.UpstreamDuration.Seconds())
	}
	if r.BytesIn > 0 {
		m.bytesIn.WithLabelValues(r.Route).Add(float64(r.BytesIn))
	}
	if r.BytesOut > 0 {
		m.bytesOut.WithLabelValues(r.Route).Add(float64(r.BytesOut))
	}
}

// SetEndpointHealth sets an endpoint's health gauge to 1 (healthy) or 0.
func (m *Metrics) SetEndpointHealth(cluster, endpoint string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.endpointHealthy.WithLabelValues(cluster, endpoint).Set(v)
}

// RemoveEndpoint drops an endpoint's health series, for endpoints that left
// their cluster (a DNS change, a reload), so that stale series do not linger.
func (m *Metrics) RemoveEndpoint(cluster, endpoint string) {
	m.endpointHealthy.DeleteLabelValues(cluster, endpoint)
}

// UpstreamError counts a failed upstream exchange. kind is one of
// [UpstreamErrorConnect], [UpstreamErrorTimeout], [UpstreamErrorReset] or
// [UpstreamErrorOther]; any other value is counted as "other" so that a
// caller's mistake cannot grow the series set without bound.
func (m *Metrics) UpstreamError(cluster, kind string) {
	switch kind {
	case UpstreamErrorConnect, UpstreamErrorTimeout, UpstreamErrorReset:
	default:
		kind = UpstreamErrorOther
	}
	m.upstreamErrors.WithLabelValues(cluster, kind).Inc()
}

// codeClass returns "2xx" for 200..299 and so on, "unknown" outside 100..599.
func codeClass(status int) string {
	if status < 100 || status > 599 {
		return codeClasses[0]
	}
	return codeClasses[status/100]
}
