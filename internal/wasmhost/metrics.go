package wasmhost

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the host's own metrics plus the plugins' custom metrics
// (proxy_define_metric), aggregated by name across instances. Safe for
// concurrent use.
type Metrics struct {
	instances      *prometheus.GaugeVec
	crashes        *prometheus.CounterVec
	recycles       *prometheus.CounterVec
	streamFailures *prometheus.CounterVec

	mu     sync.Mutex
	custom map[customKey]*pluginMetric
	calls  map[[2]string]*callHistogram // by plugin, callback
	mem    func() map[string][]uint64
}

type customKey struct {
	plugin string
	name   string
	kind   int
}

// pluginMetric is one custom metric shared by every instance of a plugin.
type pluginMetric struct {
	key  customKey
	val  atomic.Int64 // counter and gauge value
	hist prometheus.Histogram
}

// NewMetrics registers the host metrics on reg. mem, when set, reports
// each plugin's instance memory for the memory gauge.
func NewMetrics(reg prometheus.Registerer, mem func() map[string][]uint64) *Metrics {
	m := &Metrics{
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_wasm_instances", Help: "Live Wasm instances per plugin."}, []string{"plugin"}),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_wasm_crashes_total", Help: "Wasm instances that trapped or exited."}, []string{"plugin"}),
		recycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_wasm_recycles_total", Help: "Wasm instances replaced for memory or on request."}, []string{"plugin"}),
		streamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_wasm_stream_failures_total", Help: "Streams on which a plugin failed and its fail strategy applied."}, []string{"plugin"}),
		custom: map[customKey]*pluginMetric{},
		calls:  map[[2]string]*callHistogram{},
		mem:    mem,
	}
	if reg != nil {
		reg.MustRegister(m.instances, m.crashes, m.recycles, m.streamFailures, (*customCollector)(m))
	}
	return m
}

// callBuckets are the upper bounds of sluice_wasm_call_duration_seconds,
// 1 µs × 4^i, and callBoundsNs the same in nanoseconds.
var (
	callBuckets  = prometheus.ExponentialBuckets(1e-6, 4, 10)
	callBoundsNs = func() (ns [10]int64) {
		for i, b := range callBuckets {
			ns[i] = int64(math.Round(b * 1e9))
		}
		return ns
	}()
)

// callHistogram is sluice_wasm_call_duration_seconds for one plugin and
// callback. The host times every top-level guest call, several per request,
// so observing must cost little next to a call (about 0.2 µs for a warm
// no-op callback): a prometheus.Histogram took about half that again, this
// takes a linear search over integer bounds (most calls end in the first
// buckets) and two atomic adds. A scrape reads the buckets one
// by one, so a scrape racing a call may count it in _count before _sum.
type callHistogram struct {
	plugin, callback string
	counts           [len(callBoundsNs) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNs            atomic.Uint64
}

func (h *callHistogram) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(callBoundsNs) && ns > callBoundsNs[i] {
		i++
	}
	h.counts[i].Add(1)
	if ns > 0 {
		h.sumNs.Add(uint64(ns))
	}
}

// callHistogram returns the latency histogram of (plugin, callback),
// shared by every instance of the plugin.
func (m *Metrics) callHistogram(plugin, callback string) *callHistogram {
	k := [2]string{plugin, callback}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.calls[k]
	if h == nil {
		h = &callHistogram{plugin: plugin, callback: callback}
		m.calls[k] = h
	}
	return h
}

// define returns the shared metric for (plugin, name, kind).
func (m *Metrics) define(plugin, name string, kind int) *pluginMetric {
	k := customKey{plugin: plugin, name: name, kind: kind}
	m.mu.Lock()
	defer m.mu.Unlock()
	pm := m.custom[k]
	if pm == nil {
		pm = &pluginMetric{key: k}
		if kind == metricHistogram {
			pm.hist = prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "sluice_plugin_histogram", Help: "Histogram defined by a plugin.",
				ConstLabels: prometheus.Labels{"plugin": plugin, "name": name},
				Buckets:     prometheus.ExponentialBuckets(1, 4, 12)})
		}
		m.custom[k] = pm
	}
	return pm
}

var (
	descCounter = prometheus.NewDesc("sluice_plugin_counter_total", "Counter defined by a plugin (proxy_define_metric).", []string{"plugin", "name"}, nil)
	descGauge   = prometheus.NewDesc("sluice_plugin_gauge", "Gauge defined by a plugin (proxy_define_metric).", []string{"plugin", "name"}, nil)
	descMemory  = prometheus.NewDesc("sluice_wasm_instance_memory_bytes", "Linear memory of each Wasm instance.", []string{"plugin", "instance"}, nil)
	descCalls   = prometheus.NewDesc("sluice_wasm_call_duration_seconds", "Duration of top-level guest calls by plugin and callback (proxy_on_<callback>), host calls made by the guest included.", []string{"plugin", "callback"}, nil)
)

// customCollector exports the plugins' metrics, the instances' memory and
// the guest call latencies.
type customCollector Metrics

func (c *customCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCounter
	ch <- descGauge
	ch <- descMemory
	ch <- descCalls
}

func (c *customCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	m.mu.Lock()
	list := make([]*pluginMetric, 0, len(m.custom))
	for _, pm := range m.custom {
		list = append(list, pm)
	}
	calls := make([]*callHistogram, 0, len(m.calls))
	for _, h := range m.calls {
		calls = append(calls, h)
	}
	m.mu.Unlock()
	for _, h := range calls {
		buckets := make(map[float64]uint64, len(callBuckets))
		var n uint64
		for i, le := range callBuckets {
			n += h.counts[i].Load()
			buckets[le] = n
		}
		n += h.counts[len(callBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(descCalls, n, float64(h.sumNs.Load())/1e9, buckets, h.plugin, h.callback)
	}
	for _, pm := range list {
		switch pm.key.kind {
		case metricCounter:
			ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(pm.val.Load()), pm.key.plugin, pm.key.name)
		case metricGauge:
			ch <- prometheus.MustNewConstMetric(descGauge, prometheus.GaugeValue, float64(pm.val.Load()), pm.key.plugin, pm.key.name)
		case metricHistogram:
			pm.hist.Collect(ch)
		}
	}
	if m.mem != nil {
		for plugin, mems := range m.mem() {
			for i, b := range mems {
				ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(b), plugin, itoa(i))
			}
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func satAdd(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}
