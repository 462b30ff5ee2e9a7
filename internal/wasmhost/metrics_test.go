package wasmhost

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCallHistogram checks sluice_wasm_call_duration_seconds as a scrape
// sees it: bucket bounds inclusive, cumulative counts, _count, _sum and one
// series per plugin and callback, shared by every caller.
func TestCallHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, nil)
	h := m.callHistogram("p", "request_headers")
	if m.callHistogram("p", "request_headers") != h {
		t.Fatal("a second lookup of the same plugin and callback gave another histogram")
	}
	m.callHistogram("p", "log").observe(3 * time.Microsecond)
	for _, d := range []time.Duration{0, time.Microsecond, time.Microsecond + 1, 5 * time.Microsecond, 2 * time.Second} {
		h.observe(d)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, f := range families {
		if f.GetName() != "sluice_wasm_call_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["plugin"] != "p" || labels["callback"] != "request_headers" {
				continue
			}
			found++
			hist := s.GetHistogram()
			var bounds []float64
			var counts []uint64
			for _, b := range hist.GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
				counts = append(counts, b.GetCumulativeCount())
			}
			if want := prometheus.ExponentialBuckets(1e-6, 4, 10); !slices.Equal(bounds, want) {
				t.Errorf("bucket bounds %v, want %v", bounds, want)
			}
			// 0 and 1 µs in le=1e-6 (bounds are inclusive), 1 µs + 1 ns in
			// le=4e-6, 5 µs in le=1.6e-5, 2 s above every bound.
			if want := []uint64{2, 3, 4, 4, 4, 4, 4, 4, 4, 4}; !slices.Equal(counts, want) {
				t.Errorf("cumulative counts %v, want %v", counts, want)
			}
			if hist.GetSampleCount() != 5 {
				t.Errorf("_count %d, want 5", hist.GetSampleCount())
			}
			if want := 2.000007001; math.Abs(hist.GetSampleSum()-want) > 1e-12 {
				t.Errorf("_sum %v, want %v", hist.GetSampleSum(), want)
			}
		}
	}
	if found != 1 {
		t.Fatalf("found %d series for plugin p, callback request_headers; want 1", found)
	}
}
