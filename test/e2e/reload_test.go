package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// reloadConfig is a configuration whose one route matches prefix.
func reloadConfig(t *testing.T, dir, adminAddr, upstream, prefix string) string {
	t.Helper()
	return writeFile(t, dir, "sluice.yaml",
		doc("Gateway", "gw", fmt.Sprintf(`{listeners: [{name: main, address: "127.0.0.1:0"}], admin: {address: %q}, shutdownTimeout: 5s}`, adminAddr)),
		clusterDoc("up", []string{upstream}),
		routeDoc("r", fmt.Sprintf("match: {path: {prefix: %q}}", prefix), "cluster: up"),
	)
}

// startReloadable runs the binary on a configuration with one route under
// /a/ and returns it with its main listener's address.
func startReloadable(t *testing.T, extra ...string) (p *sluiceProcess, dir, adminAddr, upstream, addr string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "up") }))
	t.Cleanup(up.Close)
	dir = t.TempDir()
	adminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	upstream = up.Listener.Addr().String()
	cfg := reloadConfig(t, dir, adminAddr, upstream, "/a/")
	p = startSluice(t, append([]string{"run", "-c", cfg, "--log-format", "json"}, extra...)...)
	started := p.waitLog(t, "sluice started")
	listeners, _ := started["listeners"].(map[string]any)
	addr, _ = listeners["main"].(string)
	if addr == "" {
		t.Fatalf("the start log line names no main listener: %v", started)
	}
	return p, dir, adminAddr, upstream, addr
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCLIReloadSIGHUP: SIGHUP reloads the configuration files; a broken
// file is rejected and the running configuration keeps serving.
func TestCLIReloadSIGHUP(t *testing.T) {
	p, dir, adminAddr, upstream, addr := startReloadable(t, "--watch=false")
	if got := statusOf(t, "http://"+addr+"/a/x"); got != http.StatusOK {
		t.Fatalf("GET /a/x before: %d", got)
	}
	reloadConfig(t, dir, adminAddr, upstream, "/b/")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := p.waitLog(t, "configuration reloaded")
	if line["generation"] != float64(2) {
		t.Errorf("reload log line: %v", line)
	}
	if a, b := statusOf(t, "http://"+addr+"/a/x"), statusOf(t, "http://"+addr+"/b/x"); a != http.StatusNotFound || b != http.StatusOK {
		t.Errorf("after SIGHUP: /a/x %d, /b/x %d; want 404, 200", a, b)
	}

	if err := os.WriteFile(filepath.Join(dir, "sluice.yaml"), []byte("kind: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rejected := p.waitLog(t, "configuration rejected; the running configuration keeps serving")
	if e, _ := rejected["error"].(string); e == "" || e[:len(dir)] != dir {
		t.Errorf("rejection does not name file:line: %v", rejected)
	}
	if got := statusOf(t, "http://"+addr+"/b/x"); got != http.StatusOK {
		t.Errorf("after a rejected reload: /b/x %d, want 200", got)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestCLIReloadWatchAndAdmin: the binary watches its configuration by
// default, and POST /reload answers the result.
func TestCLIReloadWatchAndAdmin(t *testing.T) {
	p, dir, adminAddr, upstream, addr := startReloadable(t, "--watch-debounce=50ms")
	p.waitLog(t, "watching the configuration for changes")
	reloadConfig(t, dir, adminAddr, upstream, "/b/")
	p.waitLog(t, "configuration reloaded")
	if got := statusOf(t, "http://"+addr+"/b/x"); got != http.StatusOK {
		t.Errorf("after the file changed: /b/x %d, want 200", got)
	}
	resp, err := http.Post("http://"+adminAddr+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res struct {
		Result     string `json:"result"`
		Generation int    `json:"generation"`
		Changed    bool   `json:"changed"`
	}
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != 200 || res.Result != "noop" || res.Generation != 2 || res.Changed {
		t.Errorf("POST /reload: %d %s", resp.StatusCode, body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
