package harness

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/sluicegw/sluice/bench/internal/loadgen"
)

// Latency is a latency distribution in microseconds.
type Latency struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func latencyOf(s loadgen.Summary) Latency {
	return Latency{
		Count: s.Count, Min: us(s.Min), Mean: us(s.Mean), P50: us(s.P50), P90: us(s.P90),
		P99: us(s.P99), P999: us(s.P999), Max: us(s.Max),
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// round3 rounds to three decimals (nanoseconds, for microsecond figures),
// so the JSON carries no floating-point dust.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Metrics is what one target showed in one round, or the median over rounds
// (counts are then sums and peak RSS the maximum).
type Metrics struct {
	RequestsPerSec float64  `json:"requests_per_sec"`
	Requests       int      `json:"requests"`
	Errors         int      `json:"errors"`
	WarmupRequests int      `json:"warmup_requests"`
	WarmupErrors   int      `json:"warmup_errors"`
	ElapsedSec     float64  `json:"elapsed_sec,omitempty"`
	LatencyUs      Latency  `json:"latency_us"`
	TTFTUs         *Latency `json:"ttft_us,omitempty"`
	// TargetCPUPerRequestUs is the target process's CPU time per request
	// (warm-up included); for direct that is the mock's.
	TargetCPUPerRequestUs *float64 `json:"target_cpu_per_request_us,omitempty"`
	TargetPeakRSSBytes    *int64   `json:"target_peak_rss_bytes,omitempty"`
	// CPUSec is every process's CPU time during the run (warm-up
	// included): the targets', the load generator's, the whole machine's
	// and "other", the machine's minus ours, which is noise.
	CPUSec map[string]float64 `json:"cpu_seconds,omitempty"`
	// OtherCPUShare is "other" CPU time over the run's wall time: 0.5
	// means foreign processes kept half a core busy throughout.
	OtherCPUShare *float64       `json:"other_cpu_share,omitempty"`
	ErrorCounts   map[string]int `json:"error_counts,omitempty"`
	ErrorSamples  []string       `json:"error_samples,omitempty"`
}

func metricsOf(target string, rd round, stream bool) Metrics {
	r := rd.Result
	m := Metrics{
		RequestsPerSec: round3(r.Throughput()),
		Requests:       r.Requests,
		Errors:         r.Errors,
		WarmupRequests: r.WarmupRequests,
		WarmupErrors:   r.WarmupErrors,
		ElapsedSec:     round3(r.Elapsed.Seconds()),
		LatencyUs:      latencyOf(r.Latency),
		ErrorSamples:   r.ErrorSamples,
	}
	if len(r.ErrorCounts) > 0 {
		m.ErrorCounts = r.ErrorCounts
	}
	if stream {
		l := latencyOf(r.TTFT)
		m.TTFTUs = &l
	}
	if cpu, ok := rd.CPU[targetProcess(target)]; ok {
		if n := r.Requests + r.Errors + r.WarmupRequests + r.WarmupErrors; n > 0 {
			v := round3(us(cpu) / float64(n))
			m.TargetCPUPerRequestUs = &v
		}
	}
	if rd.PeakRSS >= 0 {
		v := rd.PeakRSS
		m.TargetPeakRSSBytes = &v
	}
	if o, ok := rd.CPU[cpuOther]; ok && rd.Wall > 0 {
		v := round3(o.Seconds() / rd.Wall.Seconds())
		m.OtherCPUShare = &v
	}
	if len(rd.CPU) > 0 {
		m.CPUSec = map[string]float64{}
		for k, v := range rd.CPU {
			m.CPUSec[k] = round3(v.Seconds())
		}
	}
	return m
}

// medianMetrics combines rounds: the median of every rate, latency and CPU
// figure, the sum of every count, the maximum peak RSS and other-CPU share.
func medianMetrics(rounds []Metrics) Metrics {
	if len(rounds) == 1 {
		return rounds[0]
	}
	pick := func(f func(Metrics) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, r := range rounds {
			xs[i] = f(r)
		}
		return round3(median(xs))
	}
	lat := func(get func(Metrics) *Latency) Latency {
		g := func(f func(Latency) float64) float64 { return pick(func(m Metrics) float64 { return f(*get(m)) }) }
		return Latency{
			Count: int(pick(func(m Metrics) float64 { return float64(get(m).Count) })),
			Min:   g(func(l Latency) float64 { return l.Min }),
			Mean:  g(func(l Latency) float64 { return l.Mean }),
			P50:   g(func(l Latency) float64 { return l.P50 }),
			P90:   g(func(l Latency) float64 { return l.P90 }),
			P99:   g(func(l Latency) float64 { return l.P99 }),
			P999:  g(func(l Latency) float64 { return l.P999 }),
			Max:   g(func(l Latency) float64 { return l.Max }),
		}
	}
	m := Metrics{
		RequestsPerSec: pick(func(m Metrics) float64 { return m.RequestsPerSec }),
		ElapsedSec:     pick(func(m Metrics) float64 { return m.ElapsedSec }),
		LatencyUs:      lat(func(m Metrics) *Latency { return &m.LatencyUs }),
	}
	if rounds[0].TTFTUs != nil {
		l := lat(func(m Metrics) *Latency { return m.TTFTUs })
		m.TTFTUs = &l
	}
	var cpu []float64
	seen := map[string]bool{}
	for _, r := range rounds {
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.WarmupRequests += r.WarmupRequests
		m.WarmupErrors += r.WarmupErrors
		if r.TargetCPUPerRequestUs != nil {
			cpu = append(cpu, *r.TargetCPUPerRequestUs)
		}
		if r.OtherCPUShare != nil && (m.OtherCPUShare == nil || *r.OtherCPUShare > *m.OtherCPUShare) {
			v := *r.OtherCPUShare
			m.OtherCPUShare = &v
		}
		if r.TargetPeakRSSBytes != nil && (m.TargetPeakRSSBytes == nil || *r.TargetPeakRSSBytes > *m.TargetPeakRSSBytes) {
			v := *r.TargetPeakRSSBytes
			m.TargetPeakRSSBytes = &v
		}
		for k, v := range r.ErrorCounts {
			if m.ErrorCounts == nil {
				m.ErrorCounts = map[string]int{}
			}
			m.ErrorCounts[k] += v
		}
		for _, s := range r.ErrorSamples {
			if !seen[s] && len(m.ErrorSamples) < 5 {
				seen[s] = true
				m.ErrorSamples = append(m.ErrorSamples, s)
			}
		}
	}
	if len(cpu) == len(rounds) {
		v := round3(median(cpu))
		m.TargetCPUPerRequestUs = &v
	}
	return m
}

// median of xs; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Added is how much one target adds to another's latencies (a proxy to
// direct's, a chain to sluice's), in microseconds.
type Added struct {
	P50     float64  `json:"p50"`
	P99     float64  `json:"p99"`
	TTFTP50 *float64 `json:"ttft_p50,omitempty"`
	TTFTP99 *float64 `json:"ttft_p99,omitempty"`
}

// Ratios are one target's figures divided by another's (sluice by the
// plain proxy; a chain by sluice or by the plain proxy): requests per
// second, latency added to direct, and CPU per request. Null where the
// divisor's figure is not positive or a target did not run.
type Ratios struct {
	Throughput    *float64 `json:"throughput"`
	AddedP50      *float64 `json:"added_p50"`
	AddedP99      *float64 `json:"added_p99"`
	AddedTTFTP50  *float64 `json:"added_ttft_p50,omitempty"`
	AddedTTFTP99  *float64 `json:"added_ttft_p99,omitempty"`
	CPUPerRequest *float64 `json:"cpu_per_request"`
}

// Comparison sets the targets of one scenario against each other.
type Comparison struct {
	AddedVsDirectUs map[string]Added `json:"added_vs_direct_us"`
	SluiceOverPlain Ratios           `json:"sluice_over_plain"`
	// Chains sets every plugin-chain target that ran against sluice
	// without plugins and against the plain proxy. No goal judges them.
	Chains map[string]ChainComparison `json:"chains,omitempty"`
}

// ChainComparison is one chain target against the gateway without plugins
// and against the plain proxy.
type ChainComparison struct {
	Plugins    int    `json:"plugins"`
	OverSluice Ratios `json:"over_sluice"`
	OverPlain  Ratios `json:"over_plain"`
	// AddedVsSluiceUs is the chain's latencies minus sluice's: what the
	// plugins cost, in microseconds. Absent when sluice did not run.
	AddedVsSluiceUs *Added `json:"added_vs_sluice_us,omitempty"`
}

// compare computes the comparison of one scenario from the targets'
// medians; chains maps each chain target to its plugin count.
func compare(med map[string]Metrics, chains map[string]int) Comparison {
	c := Comparison{AddedVsDirectUs: map[string]Added{}}
	if d, ok := med[TargetDirect]; ok {
		for t, m := range med {
			if t != TargetDirect {
				c.AddedVsDirectUs[t] = added(m, d)
			}
		}
	}
	c.SluiceOverPlain = ratios(med, c.AddedVsDirectUs, TargetSluice, TargetPlain)
	for name, n := range chains {
		m, ok := med[name]
		if !ok {
			continue
		}
		if c.Chains == nil {
			c.Chains = map[string]ChainComparison{}
		}
		cc := ChainComparison{
			Plugins:    n,
			OverSluice: ratios(med, c.AddedVsDirectUs, name, TargetSluice),
			OverPlain:  ratios(med, c.AddedVsDirectUs, name, TargetPlain),
		}
		if s, ok := med[TargetSluice]; ok {
			a := added(m, s)
			cc.AddedVsSluiceUs = &a
		}
		c.Chains[name] = cc
	}
	return c
}

// added is what m adds to base's latencies, in microseconds.
func added(m, base Metrics) Added {
	a := Added{P50: round3(m.LatencyUs.P50 - base.LatencyUs.P50), P99: round3(m.LatencyUs.P99 - base.LatencyUs.P99)}
	if m.TTFTUs != nil && base.TTFTUs != nil {
		p50, p99 := round3(m.TTFTUs.P50-base.TTFTUs.P50), round3(m.TTFTUs.P99-base.TTFTUs.P99)
		a.TTFTP50, a.TTFTP99 = &p50, &p99
	}
	return a
}

// ratios divides target a's figures by target b's; the added-latency
// ratios need both in addedVsDirect.
func ratios(med map[string]Metrics, addedVsDirect map[string]Added, a, b string) Ratios {
	var r Ratios
	ma, okA := med[a]
	mb, okB := med[b]
	if !okA || !okB {
		return r
	}
	r.Throughput = ratio(ma.RequestsPerSec, mb.RequestsPerSec)
	if ma.TargetCPUPerRequestUs != nil && mb.TargetCPUPerRequestUs != nil {
		r.CPUPerRequest = ratio(*ma.TargetCPUPerRequestUs, *mb.TargetCPUPerRequestUs)
	}
	aa, okAA := addedVsDirect[a]
	ab, okAB := addedVsDirect[b]
	if okAA && okAB {
		r.AddedP50 = ratio(aa.P50, ab.P50)
		r.AddedP99 = ratio(aa.P99, ab.P99)
		if aa.TTFTP50 != nil && ab.TTFTP50 != nil {
			r.AddedTTFTP50 = ratio(*aa.TTFTP50, *ab.TTFTP50)
			r.AddedTTFTP99 = ratio(*aa.TTFTP99, *ab.TTFTP99)
		}
	}
	return r
}

// ratio is a/b, or nil when b is not positive (a ratio against nothing
// measured means nothing).
func ratio(a, b float64) *float64 {
	if b <= 0 {
		return nil
	}
	v := math.Round(a/b*10000) / 10000
	return &v
}

// Verdicts of a goal.
const (
	VerdictPass = "PASS"
	VerdictFail = "FAIL"
	VerdictNA   = "N/A"
)

// GoalResult is one goal judged.
type GoalResult struct {
	Scenario string   `json:"scenario"`
	Goal     string   `json:"goal"`
	What     string   `json:"what"`
	Value    *float64 `json:"value"`
	Op       string   `json:"op"`
	Limit    float64  `json:"limit"`
	Verdict  string   `json:"verdict"`
	// Why explains an N/A.
	Why string `json:"why,omitempty"`
}

// Goals are the limits the ratios are judged against.
type Goals struct {
	// Throughput is the least acceptable sluice/plain requests-per-second ratio.
	Throughput float64
	// AddedP50 is the most acceptable sluice/plain ratio of added p50
	// latency (and of added p50 time to first token).
	AddedP50 float64
}

func (g Goals) judge(sc Scenario, c Comparison) (GoalResult, bool) {
	gr := GoalResult{Scenario: sc.Name, Goal: sc.Goal}
	switch sc.Goal {
	case GoalThroughput:
		gr.What, gr.Value, gr.Op, gr.Limit = "throughput sluice/plain", c.SluiceOverPlain.Throughput, ">=", g.Throughput
	case GoalAddedP50:
		gr.What, gr.Value, gr.Op, gr.Limit = "added p50 sluice/plain", c.SluiceOverPlain.AddedP50, "<=", g.AddedP50
	case GoalAddedTTFTP50:
		gr.What, gr.Value, gr.Op, gr.Limit = "added TTFT p50 sluice/plain", c.SluiceOverPlain.AddedTTFTP50, "<=", g.AddedP50
	default:
		return gr, false
	}
	switch {
	case gr.Value == nil:
		gr.Verdict = VerdictNA
		if c.SluiceOverPlain.Throughput == nil {
			gr.Why = "the plain proxy or sluice did not run"
		} else {
			gr.Why = "the plain proxy added nothing measurable: noise exceeds its overhead; lengthen the run or raise -rounds"
		}
	case gr.Op == ">=" && *gr.Value >= gr.Limit, gr.Op == "<=" && *gr.Value <= gr.Limit:
		gr.Verdict = VerdictPass
	default:
		gr.Verdict = VerdictFail
	}
	return gr, true
}
