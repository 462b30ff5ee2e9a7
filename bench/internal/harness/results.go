package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is the whole result of a benchmark run, as written to
// bench/results/<timestamp>.json.
type Report struct {
	Timestamp string `json:"timestamp"`
	// Args is the harness's command line; Flags every flag's value,
	// defaults included.
	Args     []string          `json:"args"`
	Flags    map[string]string `json:"flags"`
	Machine  Machine           `json:"machine"`
	Git      Git               `json:"git"`
	Binaries map[string]string `json:"binaries"`
	// Chains are the plugin-chain targets that ran: every plugin's module
	// (path and SHA-256) and configuration, in chain order.
	Chains []ChainInfo `json:"chains,omitempty"`
	// LoadAverage is the machine's 1-minute load average before and after
	// the run; above the CPU count, other work competed with the benchmark.
	LoadAverage LoadAverage      `json:"load_average_1m"`
	Scenarios   []ScenarioReport `json:"scenarios"`
	Goals       []GoalResult     `json:"goals"`
	// Verdict is PASS, FAIL (a goal failed) or INCONCLUSIVE (no goal
	// failed but some could not be judged).
	Verdict string `json:"verdict"`
	// Failures lists the runs with failed requests; a report with
	// failures is not to be trusted.
	Failures []string `json:"failures,omitempty"`
}

// ScenarioReport is one scenario's results.
type ScenarioReport struct {
	Name          string   `json:"name"`
	Title         string   `json:"title"`
	Path          string   `json:"path"`
	Body          string   `json:"body"`
	Stream        bool     `json:"stream"`
	Concurrency   int      `json:"concurrency"`
	WarmupSec     float64  `json:"warmup_sec"`
	DurationSec   float64  `json:"duration_sec"`
	Rounds        int      `json:"rounds"`
	MockArgs      string   `json:"mock_args"`
	TargetsInRuns []string `json:"targets_in_run_order"`
	// Commands are the process command lines as last started.
	Commands   map[string]string        `json:"commands"`
	Targets    map[string]TargetResults `json:"targets"`
	Comparison Comparison               `json:"comparison"`
}

// TargetResults are one target's medians and every round.
type TargetResults struct {
	Median Metrics   `json:"median"`
	Rounds []Metrics `json:"rounds"`
}

// LoadAverage is sampled around the run.
type LoadAverage struct {
	Start *float64 `json:"start,omitempty"`
	End   *float64 `json:"end,omitempty"`
}

func sampleLoad() *float64 {
	if v, err := loadAverage(); err == nil {
		return &v
	}
	return nil
}

// Machine describes where the benchmark ran.
type Machine struct {
	GOOS          string `json:"goos"`
	GOARCH        string `json:"goarch"`
	NumCPU        int    `json:"num_cpu"`
	GOMAXPROCS    int    `json:"gomaxprocs"`
	GOMAXPROCSEnv string `json:"gomaxprocs_env,omitempty"`
	CPUModel      string `json:"cpu_model"`
	MemTotal      string `json:"mem_total,omitempty"`
	Kernel        string `json:"kernel,omitempty"`
	GoVersion     string `json:"go_version"`
	GoTool        string `json:"go_tool_version,omitempty"`
}

// Git identifies the code measured.
type Git struct {
	Commit string `json:"commit,omitempty"`
	Dirty  *bool  `json:"dirty,omitempty"`
	Error  string `json:"error,omitempty"`
}

func machineInfo() Machine {
	m := Machine{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOMAXPROCSEnv: os.Getenv("GOMAXPROCS"),
		GoVersion:     runtime.Version(),
		CPUModel:      "unknown",
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(goTool(), "version").Output(); err == nil {
		m.GoTool = strings.TrimSpace(string(out))
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo text.
func cpuModel(cpuinfo string) string {
	for line := range strings.SplitSeq(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// gitInfo reads the commit without touching the repository: optional
// locks are off, so not even the index's stat cache is refreshed.
func gitInfo(root string) Git {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return Git{Error: err.Error()}
	}
	g := Git{Commit: commit}
	if status, err := git("status", "--porcelain", "--untracked-files=no"); err == nil {
		dirty := status != ""
		g.Dirty = &dirty
	}
	return g
}

// writeReport writes r as <dir>/<timestamp>.json and <dir>/latest.json
// (each through a .tmp file and a rename) and returns the first path.
func writeReport(dir string, r *Report, at time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("results: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, at.UTC().Format("20060102T150405Z")+".json")
	for _, p := range []string{path, filepath.Join(dir, "latest.json")} {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return "", fmt.Errorf("results: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", fmt.Errorf("results: %w", err)
		}
	}
	return path, nil
}
