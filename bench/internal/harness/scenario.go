package harness

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/bench/internal/loadgen"
)

// Goal kinds a scenario can be judged on, always sluice against the plain
// proxy.
const (
	// GoalThroughput: sluice requests/s ÷ plain requests/s ≥ the limit.
	GoalThroughput = "throughput"
	// GoalAddedP50: (sluice p50 − direct p50) ÷ (plain p50 − direct p50) ≤ the limit.
	GoalAddedP50 = "added-p50"
	// GoalAddedTTFTP50: the same on time to first token.
	GoalAddedTTFTP50 = "added-ttft-p50"
)

// Scenario is one load shape applied to every target.
type Scenario struct {
	Name        string
	Title       string
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	// Path is the request path; Body the JSON body posted to it.
	Path string
	Body string
	// Stream: the response is SSE; TTFT is measured.
	Stream bool
	// MockArgs are the mock's flags for this scenario ({mockargs}).
	MockArgs string
	// Goal is the one ratio this scenario is judged on.
	Goal string
}

// request is the scenario's request to addr, with extra headers.
func (s Scenario) request(addr string, extra map[string]string) loadgen.Request {
	h := http.Header{"Content-Type": {"application/json"}}
	if s.Stream {
		h.Set("Accept", "text/event-stream")
	}
	for k, v := range extra {
		h.Set(k, v)
	}
	return loadgen.Request{
		Method: http.MethodPost,
		URL:    "http://" + addr + s.Path,
		Header: h,
		Body:   []byte(s.Body),
		Stream: s.Stream,
	}
}

// round is one load run against one target.
type round struct {
	Round  int
	Result *loadgen.Result
	// CPU is the CPU time each process (and the load generator) used
	// during the run, warm-up included.
	CPU map[string]time.Duration
	// PeakRSS is the target process's peak resident set after the run,
	// -1 when unknown.
	PeakRSS int64
	// Wall is the run's duration, warm-up included.
	Wall time.Duration
}

// scenarioRun is everything measured for one scenario.
type scenarioRun struct {
	Scenario Scenario
	Rounds   map[string][]round // target → rounds
	Commands map[string]string  // process → command line of its last start
	Output   map[string]string  // process → tail of its output when the scenario ended
}

// runScenario starts the targets, checks that each answers the scenario's
// request, then runs rounds × (direct, plain, sluice, each chain) and stops
// the targets.
func (h *harness) runScenario(ctx context.Context, sc Scenario) (*scenarioRun, error) {
	h.logf("%s: starting targets", sc.Name)
	ts, err := h.startTargets(ctx, sc.MockArgs)
	if err != nil {
		return nil, err
	}
	defer ts.stop()

	run := &scenarioRun{Scenario: sc, Rounds: map[string][]round{}, Commands: map[string]string{}, Output: map[string]string{}}
	for name, p := range ts.procs {
		run.Commands[name] = joinArgv(p.Argv)
	}
	defer func() {
		for name, p := range ts.procs {
			run.Output[name] = p.Output()
		}
	}()
	for _, t := range h.opts.Targets {
		if err := h.preflight(ctx, ts, sc, t); err != nil {
			return nil, err
		}
	}
	for r := 1; r <= h.opts.Rounds; r++ {
		for _, t := range h.opts.Targets {
			rd, err := h.runOnce(ctx, ts, sc, t, r)
			if err != nil {
				return nil, err
			}
			run.Rounds[t] = append(run.Rounds[t], rd)
		}
	}
	return run, nil
}

// preflight sends the scenario's request once, so a misconfigured target
// fails with its own answer rather than as a run full of errors.
func (h *harness) preflight(ctx context.Context, ts *targetSet, sc Scenario, target string) error {
	_, err := loadgen.Probe(ctx, sc.request(ts.addr[target], h.chains[target].Header), h.opts.RequestTimeout)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	p := ts.procs[targetProcess(target)]
	return p.failure(fmt.Sprintf("preflight POST %s (%s) failed: %v", sc.Path, targetLabel(target), err))
}

func (h *harness) runOnce(ctx context.Context, ts *targetSet, sc Scenario, target string, r int) (round, error) {
	proc := ts.procs[targetProcess(target)]
	before := ts.cpu()
	began := time.Now()
	res, err := loadgen.Run(ctx, loadgen.Config{
		Request:     sc.request(ts.addr[target], h.chains[target].Header),
		Concurrency: sc.Concurrency,
		Warmup:      sc.Warmup,
		Duration:    sc.Duration,
		Timeout:     h.opts.RequestTimeout,
	})
	if err != nil {
		return round{}, err
	}
	after := ts.cpu()
	if err := ts.checkAlive(); err != nil {
		return round{}, err
	}
	rd := round{Round: r, Result: res, CPU: map[string]time.Duration{}, PeakRSS: -1, Wall: time.Since(began)}
	for name, a := range after {
		if b, ok := before[name]; ok {
			rd.CPU[name] = a - b
		}
	}
	if m, ok := rd.CPU[cpuMachine]; ok {
		ours := time.Duration(0)
		for name, d := range rd.CPU {
			if name != cpuMachine {
				ours += d
			}
		}
		rd.CPU[cpuOther] = max(0, m-ours)
	}
	if rss, err := processPeakRSS(proc.Pid()); err == nil {
		rd.PeakRSS = rss
	}
	line := fmt.Sprintf("%s round %d/%d %-13s %9.0f req/s  p50 %s  p99 %s", sc.Name, r, h.opts.Rounds, target,
		res.Throughput(), fmtDur(res.Latency.P50), fmtDur(res.Latency.P99))
	if sc.Stream {
		line += fmt.Sprintf("  ttft p50 %s", fmtDur(res.TTFT.P50))
	}
	if n := res.TotalErrors(); n > 0 {
		line += fmt.Sprintf("  ERRORS %d %v", n, res.ErrorCounts)
	}
	h.logf("%s", line)
	return rd, nil
}
