package loadgen

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of a set of latency samples. Percentiles are
// exact (nearest rank over every sample), not estimated from buckets.
type Summary struct {
	Count int
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summarize returns the distribution of samples. It sorts samples in place.
// An empty slice gives the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	return Summary{
		Count: len(samples),
		Min:   samples[0],
		Mean:  time.Duration(sum / float64(len(samples))),
		P50:   Percentile(samples, 50),
		P90:   Percentile(samples, 90),
		P99:   Percentile(samples, 99),
		P999:  Percentile(samples, 99.9),
		Max:   samples[len(samples)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile of sorted, an
// ascending slice: the smallest sample such that at least p percent of the
// samples are less than or equal to it. p ≤ 0 gives the minimum, p ≥ 100 the
// maximum, an empty slice 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	// p*n/100 rather than p/100*n keeps whole ranks exact; the epsilon
	// absorbs the rounding of fractional percentiles such as 99.9.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}
