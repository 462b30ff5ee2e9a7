package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testOptions runs every scenario briefly against helper processes: the
// mock, a reverse proxy as the plain target and, as the gateway (of sluice
// and of two chain targets), a proxy that loads the generated config and
// serves /readyz and the plugins' states on its admin address.
func testOptions(t *testing.T) (Options, *bytes.Buffer, *bytes.Buffer) {
	opts := DefaultOptions()
	opts.Commands = Commands{
		Mock:           helperCmd(t, "mock", "{addr}", "{mockargs}"),
		Plain:          helperCmd(t, "proxy", "{addr}", "{upstream}"),
		Gateway:        helperCmd(t, "gateway", "{config}"),
		MockReady:      DefaultCommands.MockReady,
		PlainReady:     DefaultCommands.PlainReady,
		GatewayReady:   DefaultCommands.GatewayReady,
		GatewayPlugins: DefaultCommands.GatewayPlugins,
	}
	opts.Chains = fakeChains(t, 1, 3)
	opts.Targets = opts.AllTargets()
	for i := range opts.Scenarios {
		opts.Scenarios[i].Warmup = 50 * time.Millisecond
		opts.Scenarios[i].Duration = 200 * time.Millisecond
		opts.Scenarios[i].MockArgs = ""
		if opts.Scenarios[i].Stream {
			opts.Scenarios[i].MockArgs = "--chunk-delay 1ms"
		}
		opts.Scenarios[i].Concurrency = min(opts.Scenarios[i].Concurrency, 4)
	}
	opts.OutDir = t.TempDir()
	opts.Args = []string{"benchrun", "-test"}
	opts.Flags = map[string]string{"rounds": "1"}
	var stdout, stderr bytes.Buffer
	opts.Stdout, opts.Stderr = &stdout, &stderr
	return opts, &stdout, &stderr
}

// fakeChains are NoopChains whose plugins are a stand-in module file (the
// helper gateway does not run them), so the tests need no Wasm toolchain.
func fakeChains(t *testing.T, sizes ...int) []ChainTarget {
	wasm := filepath.Join(t.TempDir(), "noop.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	chains := NoopChains(sizes...)
	for i := range chains {
		for j := range chains[i].Plugins {
			chains[i].Plugins[j].TestPlugin, chains[i].Plugins[j].Wasm = "", wasm
		}
	}
	return chains
}

func TestRunEndToEnd(t *testing.T) {
	opts, stdout, stderr := testOptions(t)
	if err := Run(context.Background(), opts); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	out := stdout.String()
	for _, want := range []string{"== chat-throughput", "== chat-latency", "== stream", "requests/s", "TTFT p50", "Verdict:", "Results:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "REQUESTS FAILED") {
		t.Errorf("report shows failures:\n%s", out)
	}

	b, err := os.ReadFile(filepath.Join(opts.OutDir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 3 || len(r.Goals) != 3 {
		t.Fatalf("report has %d scenarios and %d goals, want 3 and 3", len(r.Scenarios), len(r.Goals))
	}
	wantTargets := []string{"direct", "plain", "sluice", "sluice-wasm1", "sluice-wasm3"}
	for _, sc := range r.Scenarios {
		if !slices.Equal(sc.TargetsInRuns, wantTargets) {
			t.Errorf("%s: targets ran %q, want %q", sc.Name, sc.TargetsInRuns, wantTargets)
		}
		for _, target := range wantTargets {
			m, ok := sc.Targets[target]
			if !ok || len(m.Rounds) != 1 {
				t.Errorf("%s: target %s missing or without its round", sc.Name, target)
				continue
			}
			if m.Median.Requests == 0 || m.Median.RequestsPerSec <= 0 || m.Median.LatencyUs.P50 <= 0 {
				t.Errorf("%s/%s: nothing measured: %+v", sc.Name, target, m.Median)
			}
			if sc.Stream && (m.Median.TTFTUs == nil || m.Median.TTFTUs.P50 < 1000) {
				t.Errorf("%s/%s: TTFT %+v: the mock delays the first content by 1ms", sc.Name, target, m.Median.TTFTUs)
			}
		}
		if sc.Comparison.SluiceOverPlain.Throughput == nil {
			t.Errorf("%s: no throughput ratio", sc.Name)
		}
		for _, proc := range []string{procGateway, "sluice-wasm1", "sluice-wasm3"} {
			if !strings.Contains(sc.Commands[proc], proc+"-127_0_0_1_") {
				t.Errorf("%s: %s command %q does not name its generated config", sc.Name, proc, sc.Commands[proc])
			}
		}
		for name, n := range map[string]int{"sluice-wasm1": 1, "sluice-wasm3": 3} {
			cc, ok := sc.Comparison.Chains[name]
			if !ok || cc.Plugins != n || cc.OverSluice.Throughput == nil || cc.OverPlain.Throughput == nil || cc.AddedVsSluiceUs == nil {
				t.Errorf("%s: chain comparison of %s incomplete: %+v", sc.Name, name, cc)
			}
			if sc.Stream && (cc.AddedVsSluiceUs == nil || cc.AddedVsSluiceUs.TTFTP50 == nil) {
				t.Errorf("%s: chain %s: no added TTFT", sc.Name, name)
			}
		}
	}
	if len(r.Chains) != 2 || len(r.Chains[1].Plugins) != 3 || r.Chains[1].Plugins[2].Name != "noop-3" ||
		len(r.Chains[1].Plugins[2].SHA256) != 64 {
		t.Errorf("chains not recorded: %+v", r.Chains)
	}
	if !strings.Contains(out, "plugin chains against sluice") || !strings.Contains(out, "sluice-wasm3") {
		t.Errorf("report lacks the plugin-chain table:\n%s", out)
	}
	if r.Machine.NumCPU == 0 || r.Machine.GoVersion == "" || r.Flags["rounds"] != "1" {
		t.Errorf("machine or flags not recorded: %+v %v", r.Machine, r.Flags)
	}
	entries, _ := os.ReadDir(opts.OutDir)
	if len(entries) != 2 {
		t.Errorf("out dir holds %d files, want <timestamp>.json and latest.json", len(entries))
	}
}

func TestRunFailsWhenATargetDoesNotStart(t *testing.T) {
	opts, stdout, _ := testOptions(t)
	opts.Commands.Gateway = helperCmd(t, "crash")
	opts.Targets = BaseTargets // the gateway command here is no Sluice
	opts.Scenarios = opts.Scenarios[1:2]
	err := Run(context.Background(), opts)
	var pe *ProcessError
	if !errors.As(err, &pe) || pe.Name != procGateway || !strings.Contains(pe.Output, "bad things happened") {
		t.Fatalf("Run: %v, want the gateway's start failure with its output", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("a report was printed for a run that could not start:\n%s", stdout)
	}
}

func TestRunFailsWhenAChainPluginIsNotReady(t *testing.T) {
	opts, stdout, _ := testOptions(t)
	opts.Chains[1].Plugins[1].Config = map[string]any{failPluginKey: "no such hostcall"}
	opts.Scenarios = opts.Scenarios[1:2]
	err := Run(context.Background(), opts)
	var pe *ProcessError
	if !errors.As(err, &pe) || pe.Name != "sluice-wasm3" || !strings.Contains(pe.What, "noop-2: failed: no such hostcall") {
		t.Fatalf("Run: %v, want the chain target's failed plugin named", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("a report was printed for a run whose chain did not load:\n%s", stdout)
	}
}

func TestRunSkipsThePluginCheckWhenAsked(t *testing.T) {
	opts, _, _ := testOptions(t)
	opts.Chains[0].Plugins[0].Config = map[string]any{failPluginKey: "ignored"}
	opts.Commands.GatewayPlugins = ""
	opts.Targets = []string{TargetDirect, "sluice-wasm1"}
	opts.Scenarios = opts.Scenarios[1:2]
	if err := Run(context.Background(), opts); err != nil {
		t.Fatalf("Run with -gateway-plugins '': %v", err)
	}
}

func TestRunReportsFailedRequestsLoudly(t *testing.T) {
	opts, stdout, _ := testOptions(t)
	opts.Commands.Gateway = helperCmd(t, "flaky", "{addr}")
	opts.Commands.GatewayReady = "http://{addr}/healthz"
	opts.Targets = BaseTargets // the gateway command here is no Sluice
	opts.Scenarios = opts.Scenarios[1:2]
	err := Run(context.Background(), opts)
	if !errors.Is(err, ErrRequestsFailed) {
		t.Fatalf("Run: %v, want ErrRequestsFailed", err)
	}
	out := stdout.String()
	for _, want := range []string{"REQUESTS FAILED", "chat-latency, sluice, round 1", "status 503", "flaky says no", "Results:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(opts.OutDir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) != 1 || r.Scenarios[0].Targets[TargetSluice].Median.Errors == 0 {
		t.Errorf("JSON failures %q, sluice errors %d: want the failed requests recorded",
			r.Failures, r.Scenarios[0].Targets[TargetSluice].Median.Errors)
	}
}

func TestRunFailsWhenPreflightFails(t *testing.T) {
	opts, _, _ := testOptions(t)
	// The "gateway" proxies to a dead port; readiness is taken from the
	// mock, so only the preflight can notice.
	opts.Commands.Gateway = helperCmd(t, "proxy", "{addr}", "127.0.0.1:1")
	opts.Commands.GatewayReady = "http://{upstream}/healthz"
	opts.Targets = BaseTargets // the gateway command here is no Sluice
	opts.Scenarios = opts.Scenarios[1:2]
	err := Run(context.Background(), opts)
	var pe *ProcessError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "preflight") {
		t.Fatalf("Run: %v, want a preflight failure of the gateway", err)
	}
}

func TestRunOnlySomeTargets(t *testing.T) {
	opts, stdout, _ := testOptions(t)
	opts.Targets = []string{TargetDirect}
	opts.Scenarios = opts.Scenarios[:1]
	if err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "N/A") || !strings.Contains(stdout.String(), "Verdict: INCONCLUSIVE") {
		t.Errorf("a run without plain and sluice must leave the goals N/A:\n%s", stdout)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	opts, _, _ := testOptions(t)
	opts.Scenarios = opts.Scenarios[:1]
	opts.Scenarios[0].Duration = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	opts.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	// Cancel once the first load run has begun (its progress line is
	// written only after it ends, so wait for the targets instead).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "starting targets") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestOptionsValidateReportsEveryProblem(t *testing.T) {
	opts := DefaultOptions()
	opts.Rounds = 0
	opts.Targets = []string{"direct", "nginx"}
	opts.Chains = append(opts.Chains,
		ChainTarget{Name: "sluice"},
		ChainTarget{Name: "ai6", Plugins: []ChainPlugin{{Name: "ai-proxy"}, {Name: "ai-proxy", Wasm: "a.wasm", TestPlugin: "go/noop"}}},
		ChainTarget{Name: "ai6", Plugins: []ChainPlugin{{Name: "Bad_Name", Wasm: "b.wasm"}}},
	)
	opts.Scenarios[0].Concurrency = 0
	opts.Commands.Gateway = "{sluice} run -c {cfg}"
	err := opts.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad options")
	}
	for _, want := range []string{
		"-rounds 0", `unknown target "nginx" (known: direct, plain, sluice, sluice-wasm1, sluice-wasm5, sluice-wasm10, sluice-ai6, ai6)`,
		"concurrency 0", "unknown placeholder {cfg}",
		`chain "sluice": the name is taken by a built-in target`, `chain "sluice": no plugins`,
		`chain "ai6": plugin "ai-proxy": set exactly one of Wasm`, `chain "ai6": plugin "ai-proxy": listed twice`,
		`chain "ai6": defined twice`, `chain "ai6": plugin "Bad_Name": a name has lower-case letters`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("default options invalid: %v", err)
	}
}

func TestCommandsUseBinariesOnlyWhenNeeded(t *testing.T) {
	c := DefaultCommands
	if !c.uses("{sluice}", []string{TargetDirect}) {
		t.Error("the default mock is sluice mock")
	}
	if c.uses("{plainproxy}", []string{TargetDirect, TargetSluice}) {
		t.Error("plainproxy needed although the plain target is off")
	}
	c.Mock = "/opt/mock --listen {addr}"
	if c.uses("{sluice}", []string{TargetDirect, TargetPlain}) {
		t.Error("sluice needed although neither mock nor gateway uses it")
	}
	if !c.uses("{sluice}", []string{TargetDirect, NoopChainName(5)}) {
		t.Error("a chain target runs the gateway command, which is sluice")
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"sluice": "/b/sluice", "addr": "127.0.0.1:5", "mockargs": "--ttft 0s --chunk-delay 1ms"}
	got := expandArgv(DefaultCommands.Mock, vars)
	want := []string{"/b/sluice", "mock", "--listen", "127.0.0.1:5", "--ttft", "0s", "--chunk-delay", "1ms"}
	if !slices.Equal(got, want) {
		t.Errorf("expandArgv = %q, want %q", got, want)
	}
	if got := expand("{unknown} {addr}", vars); got != "{unknown} 127.0.0.1:5" {
		t.Errorf("expand left %q", got)
	}
	if got := expandArgv("{sluice} mock {mockargs}", map[string]string{"sluice": "s", "mockargs": ""}); !slices.Equal(got, []string{"s", "mock"}) {
		t.Errorf("empty mock args gave %q", got)
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("// comment\nmodule "+modulePath+"\n\ngo 1.26\n"), 0o644)
	deep := filepath.Join(root, "bench", "internal")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(root, "bench", "go.mod"), []byte("module example.com/other\n"), 0o644)
	got, err := FindRepoRoot(deep)
	if err != nil || got != root {
		t.Errorf("FindRepoRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := FindRepoRoot(t.TempDir()); err == nil {
		t.Error("FindRepoRoot found a root outside the repository")
	}
}

func TestWriteReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	path, err := writeReport(dir, &Report{Verdict: VerdictPass}, at)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "20260102T030405Z.json" {
		t.Errorf("path %s", path)
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(filepath.Join(dir, "latest.json"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("latest.json differs from the timestamped file")
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := cpuModel(info); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel("processor : 0\n"); got != "unknown" {
		t.Errorf("cpuModel without a model name = %q", got)
	}
}
