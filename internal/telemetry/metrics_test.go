package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// exercise touches every metric so that every family shows up when gathered.
func exercise(m *Metrics) {
	m.RequestStarted()
	m.RequestFinished(&Record{
		Route: "chat", Cluster: "openai", Status: 200,
		Duration: 2 * time.Second, UpstreamDuration: 1900 * time.Millisecond, TimeToFirstByte: 300 * time.Millisecond,
		BytesIn: 512, BytesOut: 4096,
	})
	m.SetEndpointHealth("openai", "10.0.0.1:443", true)
	m.UpstreamError("openai", UpstreamErrorTimeout)
}

func TestMetricsPassPromlint(t *testing.T) {
	reg := prometheus.NewRegistry()
	exercise(NewMetrics(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := []string{
		"sluice_http_requests_total",
		"sluice_http_request_duration_seconds",
		"sluice_http_requests_in_flight",
		"sluice_upstream_request_duration_seconds",
		"sluice_http_time_to_first_byte_seconds",
		"sluice_http_request_bytes_total",
		"sluice_http_response_bytes_total",
		"sluice_upstream_endpoint_healthy",
		"sluice_upstream_errors_total",
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range want {
		if !got[name] {
			t.Errorf("metric %s not gathered", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("gathered %d families, want %d: %v", len(got), len(want), got)
	}

	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestNewRegistryPassesPromlint(t *testing.T) {
	reg := NewRegistry()
	exercise(NewMetrics(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sawGo bool
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "go_") {
			sawGo = true
		}
	}
	if !sawGo {
		t.Error("NewRegistry holds no go_* runtime metrics")
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sluice_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestRequestFinished(t *testing.T) {
	tests := []struct {
		name      string
		rec       Record
		class     string
		wantTTFB  uint64
		wantUp    uint64
		wantIn    float64
		wantOut   float64
		wantInSer int // series count of sluice_http_request_bytes_total
	}{
		{
			name:  "proxied 200",
			rec:   Record{Route: "chat", Cluster: "openai", Status: 200, Duration: time.Second, UpstreamDuration: 900 * time.Millisecond, TimeToFirstByte: 100 * time.Millisecond, BytesIn: 10, BytesOut: 20},
			class: "2xx", wantTTFB: 1, wantUp: 1, wantIn: 10, wantOut: 20, wantInSer: 1,
		},
		{
			name:  "local reply 404 without route",
			rec:   Record{Status: 404, Duration: time.Millisecond, TimeToFirstByte: time.Millisecond, BytesOut: 9},
			class: "4xx", wantTTFB: 1, wantUp: 0, wantIn: 0, wantOut: 9, wantInSer: 0,
		},
		{
			name:  "upstream 503",
			rec:   Record{Route: "chat", Cluster: "openai", Status: 503, Duration: time.Second, UpstreamDuration: time.Second, TimeToFirstByte: time.Second},
			class: "5xx", wantTTFB: 1, wantUp: 1,
		},
		{
			name:  "client gone before any response",
			rec:   Record{Route: "chat", Cluster: "openai", Status: 0, Duration: 3 * time.Second, BytesIn: 7},
			class: "unknown", wantTTFB: 0, wantUp: 0, wantIn: 7, wantInSer: 1,
		},
		{
			name:  "redirect",
			rec:   Record{Route: "r", Status: 301, Duration: time.Millisecond, TimeToFirstByte: time.Millisecond},
			class: "3xx", wantTTFB: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			m.RequestStarted()
			m.RequestFinished(&tt.rec)

			if got := testutil.ToFloat64(m.inFlight); got != 0 {
				t.Errorf("in flight = %v, want 0", got)
			}
			if got := testutil.ToFloat64(m.requests.WithLabelValues(tt.rec.Route, tt.rec.Cluster, tt.class)); got != 1 {
				t.Errorf("requests{code_class=%q} = %v, want 1", tt.class, got)
			}
			if got := histCount(t, reg, "sluice_http_request_duration_seconds"); got != 1 {
				t.Errorf("request duration samples = %d, want 1", got)
			}
			if got := histCount(t, reg, "sluice_http_time_to_first_byte_seconds"); got != tt.wantTTFB {
				t.Errorf("ttfb samples = %d, want %d", got, tt.wantTTFB)
			}
			if got := histCount(t, reg, "sluice_upstream_request_duration_seconds"); got != tt.wantUp {
				t.Errorf("upstream duration samples = %d, want %d", got, tt.wantUp)
			}
			if got := testutil.CollectAndCount(m.bytesIn); got != tt.wantInSer {
				t.Errorf("bytes in series = %d, want %d", got, tt.wantInSer)
			}
			if tt.wantIn > 0 {
				if got := testutil.ToFloat64(m.bytesIn.WithLabelValues(tt.rec.Route)); got != tt.wantIn {
					t.Errorf("bytes in = %v, want %v", got, tt.wantIn)
				}
			}
			if tt.wantOut > 0 {
				if got := testutil.ToFloat64(m.bytesOut.WithLabelValues(tt.rec.Route)); got != tt.wantOut {
					t.Errorf("bytes out = %v, want %v", got, tt.wantOut)
				}
			}
		})
	}
}

// histCount sums the sample counts of every series of the histogram name.
func histCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("%s is %v, want a histogram", name, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func TestDurationBucketsSpanLLMLatencies(t *testing.T) {
	if durationBuckets[0] > 0.001 {
		t.Errorf("smallest bucket %v, want ≤ 1ms", durationBuckets[0])
	}
	if last := durationBuckets[len(durationBuckets)-1]; last < 300 {
		t.Errorf("largest bucket %v, want ≥ 300s", last)
	}
	for i := 1; i < len(durationBuckets); i++ {
		if durationBuckets[i] <= durationBuckets[i-1] {
			t.Fatalf("buckets not increasing at %d: %v", i, durationBuckets)
		}
	}
}

func TestInFlight(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.RequestStarted()
	m.RequestStarted()
	m.RequestStarted()
	m.RequestFinished(&Record{Status: 200})
	if got := testutil.ToFloat64(m.inFlight); got != 2 {
		t.Errorf("in flight = %v, want 2", got)
	}
}

func TestEndpointHealth(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	tests := []struct {
		name    string
		healthy bool
		want    float64
	}{
		{"healthy", true, 1},
		{"unhealthy", false, 0},
		{"healthy again", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.SetEndpointHealth("c", "10.0.0.1:80", tt.healthy)
			if got := testutil.ToFloat64(m.endpointHealthy.WithLabelValues("c", "10.0.0.1:80")); got != tt.want {
				t.Errorf("gauge = %v, want %v", got, tt.want)
			}
		})
	}
	m.RemoveEndpoint("c", "10.0.0.1:80")
	if got := testutil.CollectAndCount(m.endpointHealthy); got != 0 {
		t.Errorf("after RemoveEndpoint: %d series, want 0", got)
	}
}

func TestUpstreamErrorKinds(t *testing.T) {
	tests := []struct {
		name, kind, want string
	}{
		{"connect", UpstreamErrorConnect, "connect"},
		{"timeout", UpstreamErrorTimeout, "timeout"},
		{"reset", UpstreamErrorReset, "reset"},
		{"other", UpstreamErrorOther, "other"},
		{"unknown kind folds into other", "tls handshake", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			m.UpstreamError("c", tt.kind)
			if got := testutil.ToFloat64(m.upstreamErrors.WithLabelValues("c", tt.want)); got != 1 {
				t.Errorf("errors{kind=%q} = %v, want 1", tt.want, got)
			}
			if got := testutil.CollectAndCount(m.upstreamErrors); got != 1 {
				t.Errorf("%d series, want 1", got)
			}
		})
	}
}

func TestCodeClass(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{0, "unknown"}, {99, "unknown"}, {100, "1xx"}, {200, "2xx"}, {299, "2xx"},
		{304, "3xx"}, {429, "4xx"}, {599, "5xx"}, {600, "unknown"}, {-1, "unknown"},
	}
	for _, tt := range tests {
		if got := codeClass(tt.status); got != tt.want {
			t.Errorf("codeClass(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
}

func TestMetricsAreNotGlobal(t *testing.T) {
	// Two gateways (two reloads, two tests) must each get their own set.
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	ma, mb := NewMetrics(a), NewMetrics(b)
	ma.UpstreamError("c", UpstreamErrorReset)
	if got := testutil.CollectAndCount(mb.upstreamErrors); got != 0 {
		t.Errorf("second registry sees %d series from the first", got)
	}
	n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "sluice_upstream_errors_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("default registry holds %d sluice series", n)
	}
}

func BenchmarkRequestFinished(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	r := &Record{Route: "chat", Cluster: "openai", Status: 200, Duration: time.Second, UpstreamDuration: time.Second, TimeToFirstByte: time.Millisecond, BytesIn: 100, BytesOut: 1000}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestStarted()
			m.RequestFinished(r)
		}
	})
}
