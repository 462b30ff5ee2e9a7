package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Microsecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"single p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"p0 is min", hundred, 0, ms(1)},
		{"p1 of 100", hundred, 1, ms(1)},
		{"p50 of 100", hundred, 50, ms(50)},
		{"p90 of 100", hundred, 90, ms(90)},
		{"p99 of 100", hundred, 99, ms(99)},
		{"p100 is max", hundred, 100, ms(100)},
		{"above 100 is max", hundred, 150, ms(100)},
		{"p99.9 of 1000", thousand, 99.9, 999 * time.Microsecond},
		{"p50 of 1000", thousand, 50, 500 * time.Microsecond},
		{"p50 of two", []time.Duration{ms(1), ms(3)}, 50, ms(1)},
		{"p51 of two", []time.Duration{ms(1), ms(3)}, 51, ms(3)},
		{"p50 of three", []time.Duration{ms(1), ms(2), ms(3)}, 50, ms(2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(p=%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsAndSummarizes(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = ms(i + 1)
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	got := Summarize(s)
	want := Summary{
		Count: 100, Min: ms(1), Mean: 50500 * time.Microsecond,
		P50: ms(50), P90: ms(90), P99: ms(99), P999: ms(100), Max: ms(100),
	}
	if got != want {
		t.Errorf("Summarize = %+v\nwant        %+v", got, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) is not the zero Summary")
	}
}
