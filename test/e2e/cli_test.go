package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/standin/llm"
)

// runCLI runs the sluice binary to completion and returns its output and
// exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("sluice %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("sluice %s did not finish within %s; stderr:\n%s", strings.Join(args, " "), waitLimit, errb.String())
	}
	return out.String(), errb.String(), code
}

// writeFile writes lines to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(closedAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

func TestCLIVersion(t *testing.T) {
	stdout, stderr, code := runCLI(t, "version")
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	if !regexp.MustCompile(`^sluice \S+\n`).MatchString(stdout) {
		t.Errorf("version output %q, want it to start with \"sluice <version>\"", stdout)
	}
}

func TestCLIValidate(t *testing.T) {
	dir := t.TempDir()
	t.Run("quickstart example", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, "validate", filepath.Join("..", "..", "examples", "quickstart.yaml"))
		if code != 0 || !strings.HasPrefix(stdout, "ok: 1 file(s), 1 route(s), 1 cluster(s), 0 plugin(s)") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and an ok: line", code, stdout, stderr)
		}
	})
	t.Run("good file", func(t *testing.T) {
		good := writeFile(t, dir, "good.yaml",
			"apiVersion: sluice.dev/v1alpha1",
			"kind: Cluster",
			"metadata:",
			"  name: llm",
			"spec:",
			"  endpoints:",
			`    - address: "127.0.0.1:18000"`,
			"---",
			"apiVersion: sluice.dev/v1alpha1",
			"kind: Route",
			"metadata:",
			"  name: chat",
			"spec:",
			"  match:",
			"    path:",
			"      prefix: /v1/",
			"  cluster: llm",
		)
		stdout, stderr, code := runCLI(t, "validate", good)
		if code != 0 || !strings.HasPrefix(stdout, "ok: 1 file(s), 1 route(s), 1 cluster(s)") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and an ok: line", code, stdout, stderr)
		}
	})
	t.Run("bad file reports every error", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.yaml",
			"apiVersion: sluice.dev/v1alpha1", // 1
			"kind: Cluster",
			"metadata:",
			"  name: llm",
			"spec:", // 5
			"  endpoints:",
			`    - address: "127.0.0.1:99999"`, // 7: bad port
			"  balancing: fastest",             // 8: unknown policy
			"---",
			"apiVersion: sluice.dev/v1alpha1", // 10
			"kind: Route",
			"metadata:",
			"  name: chat",
			"spec:",
			"  match:", // 15
			"    path:",
			"      prefix: v1/", // 17: no leading slash
			"  cluster: nosuch", // 18: unknown cluster
			"---",
			"apiVersion: sluice.dev/v1alpha1", // 20
			"kind: Route",
			"metadata:",
			"  name: typo",
			"spec:",
			"  cluster: llm", // 25
			"  timeoutt: 5s", // 26: unknown field
		)
		stdout, stderr, code := runCLI(t, "validate", bad)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if strings.Contains(stdout, "ok:") {
			t.Errorf("stdout %q reports ok for a bad file", stdout)
		}
		want := []string{
			"7 Cluster/llm spec.endpoints[0].address",
			"8 Cluster/llm spec.balancing",
			"17 Route/chat spec.match.path.prefix",
			"18 Route/chat spec.cluster",
			"26 Route/typo spec.timeoutt",
		}
		lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:(\d+): (\w+/[a-z0-9.-]+): ([A-Za-z0-9.\[\]]+): (.+)$`)
		var got []string
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			m := lineRE.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("error line not in the form file:line: Kind/name: field: message:\n%s", l)
				continue
			}
			got = append(got, m[1]+" "+m[2]+" "+m[3])
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("errors reported (line resource field):\n%s\nwant:\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), stderr)
		}
		if last := lines[len(lines)-1]; last != fmt.Sprintf("sluice: %d error(s)", len(want)) {
			t.Errorf("last stderr line %q, want %q", last, fmt.Sprintf("sluice: %d error(s)", len(want)))
		}
	})
}

// TestCLIRunBadConfig checks that `sluice run` refuses a bad configuration
// before it opens any port.
func TestCLIRunBadConfig(t *testing.T) {
	dir := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	bad := writeFile(t, dir, "bad.yaml",
		"apiVersion: sluice.dev/v1alpha1",
		"kind: Gateway",
		"metadata:",
		"  name: gw",
		"spec:",
		"  listeners:",
		fmt.Sprintf(`    - address: "127.0.0.1:%d"`, port),
		"  admin:",
		fmt.Sprintf(`    address: "127.0.0.1:%d"`, adminPort),
		"---",
		"apiVersion: sluice.dev/v1alpha1",
		"kind: Route",
		"metadata:",
		"  name: chat",
		"spec:",
		"  cluster: missing",
	)
	_, stderr, code := runCLI(t, "run", "-c", bad)
	if code == 0 {
		t.Errorf("exit 0 for a bad configuration")
	}
	if !strings.Contains(stderr, bad+`:16: Route/chat: spec.cluster: cluster "missing" does not exist`) {
		t.Errorf("stderr does not name the problem:\n%s", stderr)
	}
	if strings.Contains(stderr, "sluice started") || strings.Contains(stderr, "admin listening") {
		t.Errorf("the gateway started listening with a bad configuration:\n%s", stderr)
	}
	for _, p := range []int{port, adminPort} {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d is not free after the failed run: %v", p, err)
			continue
		}
		ln.Close()
	}
}

// sluiceProcess is a running `sluice` command whose stderr is collected.
type sluiceProcess struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	lines  chan map[string]any // stderr lines that parse as JSON
	exited chan struct{}       // closed when the process has exited
	err    error               // Wait's result, set before exited is closed
}

func startSluice(t *testing.T, args ...string) *sluiceProcess {
	t.Helper()
	p := &sluiceProcess{
		cmd:    exec.Command(sluiceBin, args...),
		stderr: &lockedBuffer{},
		lines:  make(chan map[string]any, 128),
		exited: make(chan struct{}),
	}
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.stderr, line)
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				select {
				case p.lines <- m:
				default:
				}
			}
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("=== sluice %s stderr\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// waitLog waits for a JSON log line with the given msg.
func (p *sluiceProcess) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case m := <-p.lines:
			if m["msg"] == msg {
				return m
			}
		case <-p.exited:
			t.Fatalf("sluice exited (%v) before logging %q", p.err, msg)
		case <-deadline:
			t.Fatalf("no %q log line within %s", msg, waitLimit)
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *sluiceProcess) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(waitLimit):
		t.Fatalf("sluice did not exit within %s of SIGTERM", waitLimit)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(p.err)
	return -1
}

// TestCLIRun runs the gateway binary on a good configuration, sends a
// request through it, and stops it with SIGTERM.
func TestCLIRun(t *testing.T) {
	up := httptest.NewServer(llm.New(llm.Options{}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	accessLog := filepath.Join(dir, "access.log")
	cfg := writeFile(t, dir, "sluice.yaml",
		doc("Gateway", "gw", fmt.Sprintf(`{listeners: [{name: main, address: "127.0.0.1:0"}], admin: {address: %q}, accessLog: {path: %q}, shutdownTimeout: 5s}`, adminAddr, accessLog)),
		clusterDoc("llm", []string{up.Listener.Addr().String()}),
		routeDoc("openai", "match: {path: {prefix: /v1/}}", "cluster: llm"),
	)
	p := startSluice(t, "run", "-c", cfg, "--log-format", "json")

	eventually(t, "GET /readyz to answer 200", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	started := p.waitLog(t, "sluice started")
	listeners, _ := started["listeners"].(map[string]any)
	addr, _ := listeners["main"].(string)
	if addr == "" {
		t.Fatalf("the start log line names no main listener: %v", started)
	}
	resp, err := http.DefaultClient.Do(chatRequest(t, "http://"+addr+"/v1/chat/completions", false, "X-Request-Id", "cli-1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Echo: "+chatPrompt) {
		t.Errorf("chat through the binary: %d %s", resp.StatusCode, body)
	}

	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" log line:\n%s", p.stderr.String())
	}
	log, _ := os.ReadFile(accessLog)
	if !strings.Contains(string(log), `"request_id":"cli-1"`) {
		t.Errorf("access log has no line for the request:\n%s", log)
	}
	for _, a := range []string{addr, adminAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the process exited", a)
		}
	}
}

// TestCLIMock runs `sluice mock` on port 0 and stops it with SIGTERM.
func TestCLIMock(t *testing.T) {
	p := startSluice(t, "mock", "--listen", "127.0.0.1:0", "--log-format", "json")
	addr, _ := p.waitLog(t, "LLM stand-in listening")["address"].(string)
	if addr == "" {
		t.Fatal("no address in the listening log line")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %d", resp.StatusCode)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
