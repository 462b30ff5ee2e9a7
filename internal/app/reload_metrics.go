package app

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reloadMetrics are the configuration reload metrics, and the last result
// for /config_dump. Safe for concurrent use.
type reloadMetrics struct {
	total       *prometheus.CounterVec
	duration    prometheus.Histogram
	generation  prometheus.Gauge
	lastSuccess prometheus.Gauge

	mu   sync.Mutex
	prev *ReloadResult
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_config_reloads_total",
			Help: "Configuration reloads by result: success (a new generation serves), noop (unchanged configuration), failure (rejected; the running configuration keeps serving).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_config_reload_duration_seconds",
			Help:    "Time to load, validate and build a configuration generation and swap it in (plugin fetch, compile and canary included).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_generation",
			Help: "The configuration generation in force (1 at start, +1 per applied reload).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_last_reload_success_timestamp_seconds",
			Help: "Unix time the configuration in force was applied (start or last successful reload).",
		}),
	}
	for _, r := range []string{ReloadSuccess, ReloadNoop, ReloadFailure} {
		m.total.WithLabelValues(r)
	}
	reg.MustRegister(m.total, m.duration, m.generation, m.lastSuccess)
	return m
}

func (m *reloadMetrics) record(r ReloadResult) {
	m.total.WithLabelValues(r.Result).Inc()
	m.duration.Observe(r.Duration)
	m.mu.Lock()
	m.prev = &r
	m.mu.Unlock()
}

func (m *reloadMetrics) applied(gen uint64, at time.Time) {
	m.generation.Set(float64(gen))
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
}

// last is the latest reload's result (nil before the first).
func (m *reloadMetrics) last() *ReloadResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.prev
}
