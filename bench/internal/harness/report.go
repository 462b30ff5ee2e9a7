package harness

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// buildReport turns the scenario runs into the report: medians,
// comparisons, goals, verdict and failures.
func (h *harness) buildReport(runs []*scenarioRun) *Report {
	r := &Report{
		Timestamp:   h.started.UTC().Format(time.RFC3339),
		Args:        h.opts.Args,
		Flags:       h.opts.Flags,
		Machine:     h.machine,
		Git:         h.git,
		Binaries:    map[string]string{"sluice": h.sluiceBin, "plainproxy": h.plainBin},
		LoadAverage: h.load,
	}
	chains := map[string]int{}
	for _, t := range h.opts.Targets {
		if c, ok := h.chains[t]; ok {
			r.Chains = append(r.Chains, c)
			chains[t] = len(c.Plugins)
		}
	}
	for _, run := range runs {
		sc := run.Scenario
		sr := ScenarioReport{
			Name: sc.Name, Title: sc.Title, Path: sc.Path, Body: sc.Body, Stream: sc.Stream,
			Concurrency: sc.Concurrency, WarmupSec: sc.Warmup.Seconds(), DurationSec: sc.Duration.Seconds(),
			Rounds: h.opts.Rounds, MockArgs: sc.MockArgs, TargetsInRuns: h.opts.Targets,
			Commands: run.Commands, Targets: map[string]TargetResults{},
		}
		med := map[string]Metrics{}
		for _, t := range h.opts.Targets {
			if len(run.Rounds[t]) == 0 {
				continue
			}
			var ms []Metrics
			for _, rd := range run.Rounds[t] {
				m := metricsOf(t, rd, sc.Stream)
				ms = append(ms, m)
				if n := m.Errors + m.WarmupErrors; n > 0 {
					f := fmt.Sprintf("%s, %s, round %d: %d of %d requests failed (%s); e.g. %s",
						sc.Name, targetLabel(t), rd.Round, n, n+m.Requests+m.WarmupRequests,
						fmtCounts(m.ErrorCounts), firstOr(m.ErrorSamples, "?"))
					if out := lastLines(run.Output[targetProcess(t)], 5); out != "" {
						f += "\n     " + targetProcess(t) + " output (last lines):\n" + out
					}
					r.Failures = append(r.Failures, f)
				}
			}
			med[t] = medianMetrics(ms)
			sr.Targets[t] = TargetResults{Median: med[t], Rounds: ms}
		}
		sr.Comparison = compare(med, chains)
		if g, ok := h.opts.Goals.judge(sc, sr.Comparison); ok {
			r.Goals = append(r.Goals, g)
		}
		r.Scenarios = append(r.Scenarios, sr)
	}
	r.Verdict = overallVerdict(r.Goals)
	return r
}

func overallVerdict(goals []GoalResult) string {
	na := false
	for _, g := range goals {
		switch g.Verdict {
		case VerdictFail:
			return VerdictFail
		case VerdictNA:
			na = true
		}
	}
	if na || len(goals) == 0 {
		return "INCONCLUSIVE"
	}
	return VerdictPass
}

// noisyShare is the share of a CPU that other processes may use during a
// run before the report calls the run noisy.
const noisyShare = 0.10

// printReport writes the human-readable tables.
func printReport(w io.Writer, r *Report) {
	commit := "unknown commit"
	if r.Git.Commit != "" {
		commit = "commit " + short(r.Git.Commit)
		if r.Git.Dirty != nil && *r.Git.Dirty {
			commit += " (uncommitted changes)"
		}
	}
	fmt.Fprintf(w, "Sluice gateway benchmark, %s\n", r.Timestamp)
	fmt.Fprintf(w, "%s · %d CPUs (GOMAXPROCS %d) · %s %s/%s · %s\n",
		r.Machine.CPUModel, r.Machine.NumCPU, r.Machine.GOMAXPROCS, r.Machine.GoVersion, r.Machine.GOOS, r.Machine.GOARCH, commit)
	fmt.Fprintln(w, "Loopback; the load generator, the target and the mock share these CPUs. Compare within this table only.")
	if l := r.LoadAverage; l.Start != nil && l.End != nil {
		fmt.Fprintf(w, "Load average (1 min) %.2f before, %.2f after", *l.Start, *l.End)
		if max(*l.Start, *l.End) > float64(r.Machine.NumCPU)/2 {
			fmt.Fprintf(w, ": OTHER WORK WAS RUNNING, expect noise")
		}
		fmt.Fprintln(w)
	}

	for _, sc := range r.Scenarios {
		fmt.Fprintf(w, "\n== %s: %s\n", sc.Name, sc.Title)
		fmt.Fprintf(w, "   POST %s, concurrency %d, %s measured after %s warm-up, median of %d round(s); mock %s\n",
			sc.Path, sc.Concurrency, fmtSec(sc.DurationSec), fmtSec(sc.WarmupSec), sc.Rounds, orNone(sc.MockArgs))
		head := []string{"metric"}
		for _, t := range columns(sc) {
			head = append(head, targetLabel(t))
		}
		rows := append([][]string{append(head, "sluice/plain", "goal")}, scenarioRows(sc, r.Goals)...)
		writeTable(w, rows)
		if len(sc.Comparison.Chains) > 0 {
			fmt.Fprintln(w, "   plugin chains against sluice without plugins and against the plain proxy (no goal yet):")
			writeTable(w, chainRows(sc))
		}
		var noisy []string
		for _, t := range columns(sc) {
			if m, ok := sc.Targets[t]; ok && m.Median.OtherCPUShare != nil && *m.Median.OtherCPUShare > noisyShare {
				noisy = append(noisy, fmt.Sprintf("%s %.0f%%", targetLabel(t), 100**m.Median.OtherCPUShare))
			}
		}
		if len(noisy) > 0 {
			fmt.Fprintf(w, "   ! noisy: other processes kept a CPU busy during the runs (%s of one CPU)\n", strings.Join(noisy, ", "))
		}
	}

	fmt.Fprintln(w, "\nGoals (sluice against the plain Go reverse proxy):")
	var rows [][]string
	for _, g := range r.Goals {
		why := ""
		if g.Why != "" {
			why = "(" + g.Why + ")"
		}
		rows = append(rows, []string{g.Scenario, g.What, fmtRatio(g.Value), fmt.Sprintf("%s %.2f", opSign(g.Op), g.Limit), g.Verdict, why})
	}
	writeTable(w, rows)
	fmt.Fprintf(w, "Verdict: %s", r.Verdict)
	if len(r.Failures) > 0 {
		fmt.Fprint(w, " (void: requests failed, see below)")
	}
	fmt.Fprintln(w)

	if len(r.Failures) > 0 {
		fmt.Fprintln(w, "\n!!!!!!!! REQUESTS FAILED: the numbers above are not trustworthy !!!!!!!!")
		for _, f := range r.Failures {
			fmt.Fprintln(w, "   "+f)
		}
	}
}

// writeTable writes rows as aligned columns, indented, without trailing
// blanks.
func writeTable(w io.Writer, rows [][]string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, "   "+strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// columns are the targets shown in a scenario's table, in run order: the
// base targets always ("—" when not run), then the chains that ran.
func columns(sc ScenarioReport) []string {
	out := slices.Clone(BaseTargets)
	for _, t := range sc.TargetsInRuns {
		if _, ok := sc.Targets[t]; ok && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// chainRows are the rows of a scenario's plugin-chain table: per chain, its
// ratios to sluice and to the plain proxy, and what it adds to sluice.
func chainRows(sc ScenarioReport) [][]string {
	unit, p50, p99, over := "requests/s", "added p50", "added p99", "p50 over sluice"
	pick50 := func(r Ratios) *float64 { return r.AddedP50 }
	pick99 := func(r Ratios) *float64 { return r.AddedP99 }
	over50 := func(a Added) float64 { return a.P50 }
	if sc.Stream {
		unit, p50, p99, over = "streams/s", "added TTFT p50", "added TTFT p99", "TTFT p50 over sluice"
		pick50 = func(r Ratios) *float64 { return r.AddedTTFTP50 }
		pick99 = func(r Ratios) *float64 { return r.AddedTTFTP99 }
		over50 = func(a Added) float64 {
			if a.TTFTP50 == nil {
				return math.NaN()
			}
			return *a.TTFTP50
		}
	}
	rows := [][]string{{"chain", "plugins", "ratio to", unit, p50, p99, "CPU per request", over}}
	for _, t := range columns(sc) {
		cc, ok := sc.Comparison.Chains[t]
		if !ok {
			continue
		}
		overCell := "—"
		if cc.AddedVsSluiceUs != nil && !math.IsNaN(over50(*cc.AddedVsSluiceUs)) {
			overCell = fmtAdded(over50(*cc.AddedVsSluiceUs))
		}
		ratioCells := func(r Ratios) []string {
			return []string{fmtRatio(r.Throughput), fmtRatio(pick50(r)), fmtRatio(pick99(r)), fmtRatio(r.CPUPerRequest)}
		}
		rows = append(rows,
			append(append([]string{t, strconv.Itoa(cc.Plugins), "sluice"}, ratioCells(cc.OverSluice)...), overCell),
			append(append([]string{"", "", "plain proxy"}, ratioCells(cc.OverPlain)...), ""),
		)
	}
	return rows
}

// scenarioRows are the table rows of one scenario.
func scenarioRows(sc ScenarioReport, goals []GoalResult) [][]string {
	goalFor := func(kind string) string {
		for _, g := range goals {
			if g.Scenario == sc.Name && g.Goal == kind {
				return fmt.Sprintf("%s %.2f %s", opSign(g.Op), g.Limit, g.Verdict)
			}
		}
		return ""
	}
	cols := columns(sc)
	col := func(f func(m Metrics) string) []string {
		out := make([]string, 0, len(cols))
		for _, t := range cols {
			if tr, ok := sc.Targets[t]; ok {
				out = append(out, f(tr.Median))
			} else {
				out = append(out, "—")
			}
		}
		return out
	}
	added := func(f func(a Added) *float64) []string {
		out := []string{"—"}
		for _, t := range cols[1:] {
			if a, ok := sc.Comparison.AddedVsDirectUs[t]; ok && f(a) != nil {
				out = append(out, fmtAdded(*f(a)))
			} else {
				out = append(out, "—")
			}
		}
		return out
	}
	row := func(name string, cells []string, ratio *float64, goal string) []string {
		r := append([]string{name}, cells...)
		ratioCell := ""
		if ratio != nil || goal != "" {
			ratioCell = fmtRatio(ratio)
		}
		return append(r, ratioCell, goal)
	}
	pf := func(v float64) *float64 { return &v }
	cmp := sc.Comparison.SluiceOverPlain

	var rows [][]string
	unit := "requests/s"
	if sc.Stream {
		unit = "streams/s"
	}
	rows = append(rows, row(unit, col(func(m Metrics) string { return fmtRate(m.RequestsPerSec) }), cmp.Throughput, goalFor(GoalThroughput)))
	if sc.Stream {
		rows = append(rows,
			row("TTFT p50", col(func(m Metrics) string { return fmtUs(ttft(m).P50) }), nil, ""),
			row("TTFT p99", col(func(m Metrics) string { return fmtUs(ttft(m).P99) }), nil, ""),
			row("added TTFT p50 vs direct", added(func(a Added) *float64 { return a.TTFTP50 }), cmp.AddedTTFTP50, goalFor(GoalAddedTTFTP50)),
			row("added TTFT p99 vs direct", added(func(a Added) *float64 { return a.TTFTP99 }), cmp.AddedTTFTP99, ""),
		)
	}
	total := "latency"
	if sc.Stream {
		total = "total"
	}
	rows = append(rows,
		row(total+" p50", col(func(m Metrics) string { return fmtUs(m.LatencyUs.P50) }), nil, ""),
		row(total+" p99", col(func(m Metrics) string { return fmtUs(m.LatencyUs.P99) }), nil, ""),
		row("added "+total+" p50 vs direct", added(func(a Added) *float64 { return pf(a.P50) }), cmp.AddedP50, goalFor(GoalAddedP50)),
		row("added "+total+" p99 vs direct", added(func(a Added) *float64 { return pf(a.P99) }), cmp.AddedP99, ""),
		row("target CPU per request", col(func(m Metrics) string {
			if m.TargetCPUPerRequestUs == nil {
				return "?"
			}
			return fmtUs(*m.TargetCPUPerRequestUs)
		}), cmp.CPUPerRequest, ""),
		row("target peak RSS", col(func(m Metrics) string {
			if m.TargetPeakRSSBytes == nil {
				return "?"
			}
			return fmt.Sprintf("%.1f MiB", float64(*m.TargetPeakRSSBytes)/(1<<20))
		}), nil, ""),
		row("requests / failed", col(func(m Metrics) string {
			s := fmt.Sprintf("%d / %d", m.Requests, m.Errors+m.WarmupErrors)
			if m.Errors+m.WarmupErrors > 0 {
				s += " !!"
			}
			return s
		}), nil, ""),
	)
	return rows
}

func ttft(m Metrics) Latency {
	if m.TTFTUs == nil {
		return Latency{}
	}
	return *m.TTFTUs
}

// fmtUs formats microseconds: 85µs, 1.23ms, 2.50s.
func fmtUs(v float64) string {
	a := math.Abs(v)
	switch {
	case a < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case a < 1e6:
		return fmt.Sprintf("%.2fms", v/1e3)
	default:
		return fmt.Sprintf("%.2fs", v/1e6)
	}
}

func fmtAdded(v float64) string {
	if v < 0 {
		return "−" + fmtUs(-v)
	}
	return "+" + fmtUs(v)
}

func fmtDur(d time.Duration) string { return fmtUs(us(d)) }

// fmtRate formats a rate with thousands separators: 13,644.
func fmtRate(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *v)
}

func fmtSec(s float64) string {
	return time.Duration(s * float64(time.Second)).String()
}

func fmtCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func opSign(op string) string {
	if op == ">=" {
		return "≥"
	}
	return "≤"
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(no flags)"
	}
	return s
}

func firstOr(xs []string, def string) string {
	if len(xs) == 0 {
		return def
	}
	return xs[0]
}

// lastLines returns the last n lines of s, each indented as a quote.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "       | " + strings.Join(lines, "\n       | ")
}

func joinArgv(argv []string) string { return strings.Join(argv, " ") }
