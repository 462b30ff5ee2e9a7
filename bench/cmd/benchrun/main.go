// Command benchrun is make bench: it applies the same load to the LLM
// stand-in directly, to a plain Go reverse proxy in front of it, to Sluice
// without plugins in front of it and to Sluice with chains of 1, 5 and 10
// no-op Wasm plugins (-noop-chains), prints them side by side with the
// ratios Sluice is held to, and writes bench/results/<timestamp>.json and
// bench/results/latest.json.
//
// Exit status: 0 when the benchmark ran (whether or not the goals were
// met), 1 when a target failed to build or start, died, or requests failed,
// 2 for bad flags. The work is done by bench/internal/harness.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicegw/sluice/bench/internal/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts := harness.DefaultOptions()
	byName := map[string]*harness.Scenario{}
	for i := range opts.Scenarios {
		byName[opts.Scenarios[i].Name] = &opts.Scenarios[i]
	}
	thr, lat, str := byName["chat-throughput"], byName["chat-latency"], byName["stream"]

	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench/cmd/benchrun [flags]\n\n"+
			"Benchmarks the mock LLM directly, a plain Go reverse proxy, Sluice without plugins\n"+
			"and Sluice with chains of no-op Wasm plugins side by side on loopback.\n"+
			"Command templates may use the placeholders\n"+
			"{sluice} {plainproxy} {addr} {admin} {upstream} {config} {mockargs}.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.Repo, "repo", "", "repository root (default: found from the working directory)")
	fs.StringVar(&opts.SluiceBin, "sluice", "", "prebuilt sluice binary (default: go build -o build/sluice ./cmd/sluice)")
	fs.StringVar(&opts.PlainProxyBin, "plainproxy", "", "prebuilt plainproxy binary (default: go build -o build/plainproxy ./bench/cmd/plainproxy)")
	fs.StringVar(&opts.Commands.Mock, "mock-cmd", opts.Commands.Mock, "command starting the mock LLM")
	fs.StringVar(&opts.Commands.Plain, "plain-cmd", opts.Commands.Plain, "command starting the plain proxy")
	fs.StringVar(&opts.Commands.Gateway, "gateway-cmd", opts.Commands.Gateway, "command starting the gateway under test")
	fs.StringVar(&opts.Commands.MockReady, "mock-ready", opts.Commands.MockReady, "URL answering 200 once the mock serves")
	fs.StringVar(&opts.Commands.PlainReady, "plain-ready", opts.Commands.PlainReady, "URL answering 200 once the plain proxy serves")
	fs.StringVar(&opts.Commands.GatewayReady, "gateway-ready", opts.Commands.GatewayReady, "URL answering 200 once the gateway serves")
	fs.StringVar(&opts.Commands.GatewayPlugins, "gateway-plugins", opts.Commands.GatewayPlugins, "URL listing the gateway's plugins like Sluice's /config_dump, checked after a chain target starts (empty: no check)")
	targets := fs.String("targets", "all", "targets to run, comma-separated: direct, plain, sluice, the chains of -noop-chains (sluice-wasmN) and "+harness.AIChainName+"; all: every one")
	noopChains := fs.String("noop-chains", joinInts(harness.DefaultNoopChainSizes), "chain lengths of the no-op Wasm plugin targets sluice-wasmN, comma-separated (empty: none)")
	aiChain := fs.Bool("ai-chain", true, "run target "+harness.AIChainName+": the six core AI plugins from build/plugins (make plugins)")
	scenarios := fs.String("scenarios", "chat-throughput,chat-latency,stream", "scenarios to run, comma-separated")
	fs.IntVar(&opts.Rounds, "rounds", opts.Rounds, "rounds per scenario (targets interleaved in each); medians are reported")
	warmup := fs.Duration("warmup", time.Second, "warm-up before every measured run")
	fs.IntVar(&thr.Concurrency, "throughput-c", thr.Concurrency, "chat-throughput: concurrency")
	fs.DurationVar(&thr.Duration, "throughput-d", thr.Duration, "chat-throughput: measured duration")
	fs.IntVar(&lat.Concurrency, "latency-c", lat.Concurrency, "chat-latency: concurrency")
	fs.DurationVar(&lat.Duration, "latency-d", lat.Duration, "chat-latency: measured duration")
	fs.IntVar(&str.Concurrency, "stream-c", str.Concurrency, "stream: concurrency")
	fs.DurationVar(&str.Duration, "stream-d", str.Duration, "stream: measured duration")
	path := fs.String("path", harness.DefaultPath, "request path")
	body := fs.String("body", harness.DefaultChatBody, "chat scenarios: request body")
	streamBody := fs.String("stream-body", harness.DefaultStreamBody, "stream scenario: request body")
	mockArgs := fs.String("mock-args", thr.MockArgs, "chat scenarios: mock flags ({mockargs})")
	fs.StringVar(&str.MockArgs, "mock-stream-args", str.MockArgs, "stream scenario: mock flags ({mockargs})")
	fs.DurationVar(&opts.StartupTimeout, "startup-timeout", opts.StartupTimeout, "how long a target may take to become ready")
	fs.DurationVar(&opts.ChainStartupTimeout, "chain-startup-timeout", opts.ChainStartupTimeout, "how long a plugin-chain target may take to become ready (it compiles its plugins first)")
	fs.DurationVar(&opts.RequestTimeout, "request-timeout", opts.RequestTimeout, "bound on one request, body included")
	fs.StringVar(&opts.OutDir, "out", opts.OutDir, "directory for <timestamp>.json and latest.json, relative to the repository root (empty: write nothing)")
	fs.Float64Var(&opts.Goals.Throughput, "goal-throughput", opts.Goals.Throughput, "least acceptable sluice/plain throughput ratio")
	fs.Float64Var(&opts.Goals.AddedP50, "goal-added-p50", opts.Goals.AddedP50, "most acceptable sluice/plain ratio of added p50 latency and TTFT")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "benchrun: unexpected arguments %q\n", fs.Args())
		return 2
	}

	for _, sc := range []*harness.Scenario{thr, lat, str} {
		sc.Warmup, sc.Path = *warmup, *path
	}
	thr.Body, lat.Body, str.Body = *body, *body, *streamBody
	thr.MockArgs, lat.MockArgs = *mockArgs, *mockArgs
	sizes, err := parseSizes(*noopChains)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: -noop-chains: %v\n", err)
		return 2
	}
	opts.Chains = harness.NoopChains(sizes...)
	if *aiChain {
		opts.Chains = append(opts.Chains, harness.AIChain())
	}
	if opts.Targets = splitList(*targets); len(opts.Targets) == 1 && opts.Targets[0] == "all" {
		opts.Targets = opts.AllTargets()
	}
	var picked []harness.Scenario
	for _, name := range splitList(*scenarios) {
		sc, ok := byName[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "benchrun: -scenarios: unknown scenario %q (known: chat-throughput, chat-latency, stream)\n", name)
			return 2
		}
		picked = append(picked, *sc)
	}
	opts.Scenarios = picked
	opts.Args = os.Args
	opts.Flags = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { opts.Flags[f.Name] = f.Value.String() })

	if err := opts.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: bad flags:\n%v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once; the children still die with us
	}()

	if err := harness.Run(ctx, opts); err != nil {
		fmt.Fprintf(os.Stderr, "\nbenchrun: FAILED: %v\n", err)
		return 1
	}
	return 0
}

// parseSizes parses distinct positive chain lengths.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number of plugins", f)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d listed twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
