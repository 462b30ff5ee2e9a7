package harness

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/bench/internal/loadgen"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGatewayConfigGolden(t *testing.T) {
	dir := t.TempDir()
	path, err := writeGatewayConfig(dir, TargetSluice, gatewayConfigData{Listen: "127.0.0.1:18080", Admin: "127.0.0.1:19901", Upstream: "127.0.0.1:19000"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "sluice.yaml.golden", got)
}

func TestMedian(t *testing.T) {
	cases := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{7}, 7},
		{"odd", []float64{9, 1, 5}, 5},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestMedianMetrics(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int64) *int64 { return &v }
	rounds := []Metrics{
		{RequestsPerSec: 100, Requests: 10, Errors: 1, LatencyUs: Latency{P50: 30, P99: 300}, TargetCPUPerRequestUs: f(5), TargetPeakRSSBytes: i(10)},
		{RequestsPerSec: 300, Requests: 30, LatencyUs: Latency{P50: 10, P99: 100}, TargetCPUPerRequestUs: f(7), TargetPeakRSSBytes: i(30)},
		{RequestsPerSec: 200, Requests: 20, LatencyUs: Latency{P50: 20, P99: 900}, TargetCPUPerRequestUs: f(6), TargetPeakRSSBytes: i(20)},
	}
	m := medianMetrics(rounds)
	if m.RequestsPerSec != 200 || m.LatencyUs.P50 != 20 || m.LatencyUs.P99 != 300 || *m.TargetCPUPerRequestUs != 6 {
		t.Errorf("medians wrong: %+v", m)
	}
	if m.Requests != 60 || m.Errors != 1 || *m.TargetPeakRSSBytes != 30 {
		t.Errorf("sums or maximum wrong: requests %d errors %d rss %d", m.Requests, m.Errors, *m.TargetPeakRSSBytes)
	}
}

func TestCompareAndJudge(t *testing.T) {
	goals := Goals{Throughput: 0.9, AddedP50: 1.2}
	lat := func(p50, p99 float64) Latency { return Latency{P50: p50, P99: p99} }
	ttft := func(p50, p99 float64) *Latency { l := lat(p50, p99); return &l }
	cases := []struct {
		name        string
		goal        string
		med         map[string]Metrics
		wantVerdict string
		wantValue   float64
	}{
		{
			name: "throughput pass", goal: GoalThroughput,
			med: map[string]Metrics{
				TargetDirect: {RequestsPerSec: 80000}, TargetPlain: {RequestsPerSec: 12000}, TargetSluice: {RequestsPerSec: 11400},
			},
			wantVerdict: VerdictPass, wantValue: 0.95,
		},
		{
			name: "throughput fail", goal: GoalThroughput,
			med: map[string]Metrics{
				TargetDirect: {RequestsPerSec: 80000}, TargetPlain: {RequestsPerSec: 12000}, TargetSluice: {RequestsPerSec: 6000},
			},
			wantVerdict: VerdictFail, wantValue: 0.5,
		},
		{
			name: "added p50 pass", goal: GoalAddedP50,
			med: map[string]Metrics{
				TargetDirect: {LatencyUs: lat(100, 500)}, TargetPlain: {LatencyUs: lat(200, 900)}, TargetSluice: {LatencyUs: lat(210, 1000)},
			},
			wantVerdict: VerdictPass, wantValue: 1.1,
		},
		{
			name: "added p50 fail", goal: GoalAddedP50,
			med: map[string]Metrics{
				TargetDirect: {LatencyUs: lat(100, 500)}, TargetPlain: {LatencyUs: lat(200, 900)}, TargetSluice: {LatencyUs: lat(250, 1000)},
			},
			wantVerdict: VerdictFail, wantValue: 1.5,
		},
		{
			name: "plain adds nothing measurable", goal: GoalAddedP50,
			med: map[string]Metrics{
				TargetDirect: {LatencyUs: lat(100, 500)}, TargetPlain: {LatencyUs: lat(95, 900)}, TargetSluice: {LatencyUs: lat(150, 1000)},
			},
			wantVerdict: VerdictNA,
		},
		{
			name: "added TTFT", goal: GoalAddedTTFTP50,
			med: map[string]Metrics{
				TargetDirect: {TTFTUs: ttft(1000, 2000)}, TargetPlain: {TTFTUs: ttft(1100, 2500)}, TargetSluice: {TTFTUs: ttft(1300, 2600)},
			},
			wantVerdict: VerdictFail, wantValue: 3,
		},
		{
			name: "sluice not run", goal: GoalThroughput,
			med:         map[string]Metrics{TargetDirect: {RequestsPerSec: 1}, TargetPlain: {RequestsPerSec: 1}},
			wantVerdict: VerdictNA,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := goals.judge(Scenario{Name: "s", Goal: tc.goal}, compare(tc.med, nil))
			if !ok {
				t.Fatal("goal not judged")
			}
			if g.Verdict != tc.wantVerdict {
				t.Errorf("verdict %s, want %s (value %v)", g.Verdict, tc.wantVerdict, fmtRatio(g.Value))
			}
			if tc.wantVerdict != VerdictNA && (g.Value == nil || abs(*g.Value-tc.wantValue) > 1e-9) {
				t.Errorf("value %s, want %.2f", fmtRatio(g.Value), tc.wantValue)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestOverallVerdict(t *testing.T) {
	g := func(vs ...string) []GoalResult {
		var out []GoalResult
		for _, v := range vs {
			out = append(out, GoalResult{Verdict: v})
		}
		return out
	}
	cases := map[string]struct {
		goals []GoalResult
		want  string
	}{
		"all pass": {g(VerdictPass, VerdictPass), VerdictPass},
		"one fail": {g(VerdictPass, VerdictFail, VerdictNA), VerdictFail},
		"one n/a":  {g(VerdictPass, VerdictNA), "INCONCLUSIVE"},
		"no goals": {nil, "INCONCLUSIVE"},
	}
	for name, tc := range cases {
		if got := overallVerdict(tc.goals); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	cases := []struct{ got, want string }{
		{fmtUs(85.4), "85µs"},
		{fmtUs(1234), "1.23ms"},
		{fmtUs(2_500_000), "2.50s"},
		{fmtAdded(62), "+62µs"},
		{fmtAdded(-1500), "−1.50ms"},
		{fmtRate(13644.4), "13,644"},
		{fmtRate(999), "999"},
		{fmtRate(1234567), "1,234,567"},
		{fmtRatio(nil), "n/a"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestReportGolden fixes the printed report and the JSON layout for a run
// with known numbers.
func TestReportGolden(t *testing.T) {
	h := &harness{
		opts:      DefaultOptions(),
		started:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		machine:   Machine{GOOS: "linux", GOARCH: "amd64", NumCPU: 2, GOMAXPROCS: 2, CPUModel: "Test CPU", GoVersion: "go1.26.8"},
		git:       Git{Commit: "0123456789abcdef0123456789abcdef01234567"},
		sluiceBin: "/repo/build/sluice", plainBin: "/repo/build/plainproxy",
		chains: map[string]ChainInfo{},
	}
	for _, c := range h.opts.Chains {
		info := ChainInfo{Name: c.Name}
		for _, p := range c.Plugins {
			info.Plugins = append(info.Plugins, PluginInfo{Name: p.Name, Wasm: "/cache/go_noop-0123.wasm",
				SHA256: "b10dd2d0f9a8" + strings.Repeat("0", 52), TestPlugin: p.TestPlugin, Config: map[string]any{}})
		}
		h.chains[c.Name] = info
	}
	h.opts.Args = []string{"benchrun"}
	h.opts.Flags = map[string]string{"rounds": "1"}
	res := func(rps float64, p50, p99 time.Duration, ttft50, ttft99 time.Duration, errs int) *loadgen.Result {
		n := int(rps * 5)
		r := &loadgen.Result{
			Elapsed: 5 * time.Second, Requests: n, Errors: errs, WarmupRequests: n / 5,
			Latency:     loadgen.Summary{Count: n, P50: p50, P99: p99},
			ErrorCounts: map[string]int{},
		}
		if ttft50 > 0 {
			r.TTFT = loadgen.Summary{Count: n, P50: ttft50, P99: ttft99}
		}
		if errs > 0 {
			r.ErrorCounts["status 502"] = errs
			r.ErrorSamples = []string{`status 502: "no upstream"`}
		}
		return r
	}
	rd := func(proc string, r *loadgen.Result, cpu time.Duration) []round {
		return []round{{Round: 1, Result: r, PeakRSS: 20 << 20, Wall: 6 * time.Second,
			CPU: map[string]time.Duration{proc: cpu, procLoadgen: time.Second, cpuOther: 50 * time.Millisecond}}}
	}
	us := time.Microsecond
	sc := h.opts.Scenarios
	runs := []*scenarioRun{
		{Scenario: sc[0], Rounds: map[string][]round{
			TargetDirect:    rd(procMock, res(80000, 130*us, 900*us, 0, 0, 0), 4*time.Second),
			TargetPlain:     rd(procPlain, res(12000, 930*us, 9*time.Millisecond, 0, 0, 0), 5*time.Second),
			TargetSluice:    rd(procGateway, res(11000, 1000*us, 10*time.Millisecond, 0, 0, 0), 5500*time.Millisecond),
			"sluice-wasm1":  rd("sluice-wasm1", res(10000, 1100*us, 11*time.Millisecond, 0, 0, 0), 5800*time.Millisecond),
			"sluice-wasm5":  rd("sluice-wasm5", res(8000, 1400*us, 14*time.Millisecond, 0, 0, 0), 6000*time.Millisecond),
			"sluice-wasm10": rd("sluice-wasm10", res(6000, 1800*us, 20*time.Millisecond, 0, 0, 0), 6100*time.Millisecond),
		}},
		{Scenario: sc[1], Rounds: map[string][]round{
			TargetDirect:    rd(procMock, res(20000, 40*us, 200*us, 0, 0, 0), time.Second),
			TargetPlain:     rd(procPlain, res(8000, 120*us, 600*us, 0, 0, 0), time.Second),
			TargetSluice:    rd(procGateway, res(7000, 130*us, 700*us, 0, 0, 3), time.Second),
			"sluice-wasm1":  rd("sluice-wasm1", res(6500, 140*us, 750*us, 0, 0, 0), time.Second),
			"sluice-wasm5":  rd("sluice-wasm5", res(5500, 170*us, 800*us, 0, 0, 0), time.Second),
			"sluice-wasm10": rd("sluice-wasm10", res(4500, 210*us, 900*us, 0, 0, 0), time.Second),
		}},
		{Scenario: sc[2], Rounds: map[string][]round{
			TargetDirect:    rd(procMock, res(40, 22*time.Millisecond, 25*time.Millisecond, 1100*us, 1400*us, 0), time.Second),
			TargetPlain:     rd(procPlain, res(39, 23*time.Millisecond, 26*time.Millisecond, 1200*us, 1600*us, 0), time.Second),
			TargetSluice:    rd(procGateway, res(39, 23*time.Millisecond, 27*time.Millisecond, 1210*us, 1700*us, 0), time.Second),
			"sluice-wasm1":  rd("sluice-wasm1", res(39, 23*time.Millisecond, 27*time.Millisecond, 1220*us, 1700*us, 0), time.Second),
			"sluice-wasm5":  rd("sluice-wasm5", res(38, 24*time.Millisecond, 28*time.Millisecond, 1250*us, 1800*us, 0), time.Second),
			"sluice-wasm10": rd("sluice-wasm10", res(38, 24*time.Millisecond, 28*time.Millisecond, 1290*us, 1900*us, 0), time.Second),
		}},
	}
	report := h.buildReport(runs)
	var out bytes.Buffer
	printReport(&out, report)
	golden(t, "report.txt.golden", out.Bytes())
	b, err := json.MarshalIndent(report.Scenarios[1].Comparison.Chains["sluice-wasm5"], "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "chain-comparison.json.golden", append(b, '\n'))
	if len(report.Chains) != 4 || len(report.Chains[2].Plugins) != 10 || report.Chains[3].Name != AIChainName || len(report.Chains[3].Plugins) != 6 {
		t.Errorf("report.Chains: %+v", report.Chains)
	}
	if report.Verdict != VerdictPass || len(report.Failures) != 1 {
		t.Errorf("verdict %s, failures %q: want PASS (all three goals met) and one failure", report.Verdict, report.Failures)
	}
}
