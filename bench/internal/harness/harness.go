// Package harness runs Sluice's gateway benchmark (make bench): the same
// closed-loop load, on loopback, against the LLM stand-in directly, a plain
// Go reverse proxy in front of it, Sluice without plugins in front of it
// and Sluice with chains of Wasm plugins (by default 1, 5 and 10 no-op
// plugins), then prints them side by side with the ratios Sluice is held
// to and writes the full results as JSON.
//
// Every target is its own process, started here on fresh ports and stopped
// here, so CPU time is attributed per process; the load generator
// (package loadgen) runs in the harness process. Targets run interleaved,
// direct → plain → sluice → each chain, once per round, to spread drift
// evenly.
//
// The harness owns only the benchmark: it builds and starts the binaries
// and builds the test plugins (package wasmtest), but it never links the
// gateway's packages, so what is measured is exactly what users run.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configure a benchmark run. DefaultOptions gives the defaults of
// make bench.
type Options struct {
	// Repo is the repository root; found from the working directory when empty.
	Repo string
	// SluiceBin and PlainProxyBin are prebuilt binaries; when empty, the
	// harness builds them into build/ (only if a command needs them).
	SluiceBin, PlainProxyBin string
	Commands                 Commands
	// Targets to run, a subset of AllTargets(); run in that order.
	Targets []string
	// Chains are the plugin-chain targets known besides BaseTargets.
	Chains    []ChainTarget
	Scenarios []Scenario
	// Rounds is how often each scenario runs every target; medians are reported.
	Rounds int
	// StartupTimeout bounds a target's start; ChainStartupTimeout that of a
	// chain target's gateway, which compiles its plugins first (the first
	// compilation of a module is slow; wazero caches it on disk).
	StartupTimeout      time.Duration
	ChainStartupTimeout time.Duration
	RequestTimeout      time.Duration
	// OutDir receives <timestamp>.json and latest.json; relative to Repo.
	// Empty: write nothing.
	OutDir string
	Goals  Goals
	// Args and Flags are recorded in the results as given.
	Args  []string
	Flags map[string]string
	// Stdout receives the report, Stderr the progress.
	Stdout, Stderr io.Writer
}

// Default request bodies: about 100 bytes, the size used in spec/anchors.md §6.1.
const (
	DefaultChatBody   = `{"model":"mock-gpt","messages":[{"role":"user","content":"hello bench"}]}`
	DefaultStreamBody = `{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"hello bench"}]}`
	DefaultPath       = "/v1/chat/completions"
)

// DefaultOptions are the settings of make bench: about 126 s of load in all
// (21 s per target: three scenarios of 9, 6 and 6 s with warm-up, six
// targets).
func DefaultOptions() Options {
	chains := append(NoopChains(DefaultNoopChainSizes...), AIChain())
	return Options{
		Commands: DefaultCommands,
		Chains:   chains,
		Targets:  allTargets(chains),
		Scenarios: []Scenario{
			{
				Name: "chat-throughput", Title: "non-streaming chat completions, throughput",
				Concurrency: 16, Warmup: time.Second, Duration: 8 * time.Second,
				Path: DefaultPath, Body: DefaultChatBody, MockArgs: "--latency 0s",
				Goal: GoalThroughput,
			},
			{
				Name: "chat-latency", Title: "non-streaming chat completions, latency",
				Concurrency: 1, Warmup: time.Second, Duration: 5 * time.Second,
				Path: DefaultPath, Body: DefaultChatBody, MockArgs: "--latency 0s",
				Goal: GoalAddedP50,
			},
			{
				Name: "stream", Title: "streaming chat completions (SSE), time to first token",
				Concurrency: 1, Warmup: time.Second, Duration: 5 * time.Second,
				Path: DefaultPath, Body: DefaultStreamBody, Stream: true,
				MockArgs: "--ttft 0s --chunk-delay 1ms",
				Goal:     GoalAddedTTFTP50,
			},
		},
		Rounds:              1,
		StartupTimeout:      30 * time.Second,
		ChainStartupTimeout: 2 * time.Minute,
		RequestTimeout:      30 * time.Second,
		OutDir:              "bench/results",
		Goals:               Goals{Throughput: 0.9, AddedP50: 1.2},
		Stdout:              os.Stdout,
		Stderr:              os.Stderr,
	}
}

// ErrRequestsFailed is returned (wrapped) when the run completed but some
// requests failed: the report is printed and written, and not to be trusted.
var ErrRequestsFailed = errors.New("requests failed during the benchmark")

// harness is one benchmark run. It is used by one goroutine.
type harness struct {
	opts      Options
	root      string
	tmpDir    string
	sluiceBin string
	plainBin  string
	// chains are the chain targets that run, by name, with their modules
	// resolved; built caches test plugin paths by name.
	chains  map[string]ChainInfo
	built   map[string]string
	procs   Processes
	started time.Time
	machine Machine
	git     Git
	load    LoadAverage
}

// Run runs the benchmark. It returns an error when the options are wrong,
// a binary does not build, a target does not start or dies, ctx ends, or
// requests failed (ErrRequestsFailed, after the report). A goal missed is
// not an error: it is in the report.
func Run(ctx context.Context, opts Options) (err error) {
	if err := opts.Validate(); err != nil {
		return err
	}
	opts.Targets = inOrder(opts.Targets, opts.AllTargets())
	h := &harness{opts: opts, started: time.Now()}
	defer h.procs.StopAll() // also on panic: no child outlives the harness

	h.root = opts.Repo
	if h.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if h.root, err = FindRepoRoot(wd); err != nil {
			return err
		}
	}
	if h.tmpDir, err = os.MkdirTemp("", "sluice-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(h.tmpDir)

	if err := h.buildBinaries(); err != nil {
		return err
	}
	if err := h.resolveChains(); err != nil {
		return err
	}
	h.machine = machineInfo()
	h.git = gitInfo(h.root)
	h.load.Start = sampleLoad()

	var runs []*scenarioRun
	for _, sc := range opts.Scenarios {
		run, err := h.runScenario(ctx, sc)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %s: %w", sc.Name, ctx.Err())
			}
			return fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		runs = append(runs, run)
	}

	h.load.End = sampleLoad()
	report := h.buildReport(runs)
	fmt.Fprintln(opts.Stdout)
	printReport(opts.Stdout, report)
	if opts.OutDir != "" {
		dir := opts.OutDir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(h.root, dir)
		}
		path, err := writeReport(dir, report, h.started)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Stdout, "\nResults: %s (also %s)\n", relTo(h.root, path), relTo(h.root, filepath.Join(dir, "latest.json")))
	}
	if len(report.Failures) > 0 {
		return fmt.Errorf("%w: %d run(s) had failed requests (see above)", ErrRequestsFailed, len(report.Failures))
	}
	return nil
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var problems []error
	if o.Rounds < 1 {
		problems = append(problems, fmt.Errorf("-rounds %d: must be at least 1", o.Rounds))
	}
	if len(o.Targets) == 0 {
		problems = append(problems, errors.New("-targets: at least one target is needed"))
	}
	problems = append(problems, validateChains(o.Chains)...)
	all := o.AllTargets()
	for _, t := range o.Targets {
		if !slices.Contains(all, t) {
			problems = append(problems, fmt.Errorf("-targets: unknown target %q (known: %s)", t, strings.Join(all, ", ")))
		}
	}
	if len(o.Scenarios) == 0 {
		problems = append(problems, errors.New("-scenarios: at least one scenario is needed"))
	}
	for _, sc := range o.Scenarios {
		if sc.Concurrency < 1 {
			problems = append(problems, fmt.Errorf("scenario %s: concurrency %d: must be at least 1", sc.Name, sc.Concurrency))
		}
		if sc.Duration <= 0 {
			problems = append(problems, fmt.Errorf("scenario %s: duration %v: must be positive", sc.Name, sc.Duration))
		}
		if sc.Warmup < 0 {
			problems = append(problems, fmt.Errorf("scenario %s: warm-up %v: must not be negative", sc.Name, sc.Warmup))
		}
	}
	if o.StartupTimeout <= 0 || o.ChainStartupTimeout <= 0 || o.RequestTimeout <= 0 {
		problems = append(problems, errors.New("-startup-timeout, -chain-startup-timeout and -request-timeout must be positive"))
	}
	if err := o.Commands.validate(); err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// AllTargets lists every target the options know, each once, in run
// order: the base targets, then the chains.
func (o Options) AllTargets() []string { return allTargets(o.Chains) }

func allTargets(chains []ChainTarget) []string {
	out := slices.Clone(BaseTargets)
	for _, c := range chains {
		if !slices.Contains(out, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// inOrder returns the distinct targets of ts in the order of all.
func inOrder(ts, all []string) []string {
	var out []string
	for _, t := range all {
		if slices.Contains(ts, t) {
			out = append(out, t)
		}
	}
	return out
}

// buildBinaries builds sluice and plainproxy into build/ unless given
// prebuilt or not needed by any command.
func (h *harness) buildBinaries() error {
	var err error
	h.sluiceBin, h.plainBin = h.opts.SluiceBin, h.opts.PlainProxyBin
	if h.sluiceBin == "" && h.opts.Commands.uses("{sluice}", h.opts.Targets) {
		h.logf("building sluice: go build -o build/sluice ./cmd/sluice")
		if h.sluiceBin, err = goBuild(h.root, "build/sluice", "./cmd/sluice"); err != nil {
			return err
		}
	}
	if h.plainBin == "" && h.opts.Commands.uses("{plainproxy}", h.opts.Targets) {
		h.logf("building plainproxy: go build -o build/plainproxy ./bench/cmd/plainproxy")
		if h.plainBin, err = goBuild(h.root, "build/plainproxy", "./bench/cmd/plainproxy"); err != nil {
			return err
		}
	}
	for _, p := range []*string{&h.sluiceBin, &h.plainBin} {
		if *p != "" && !filepath.IsAbs(*p) {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	return nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.opts.Stderr, "bench: "+format+"\n", args...)
}

func relTo(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil {
		return rel
	}
	return path
}
