package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// ChainTarget is a target that runs Sluice in front of the mock, like
// target sluice, with a chain of Wasm plugins applied to every request.
// The plugins run in list order (the generated WasmPlugin documents set no
// phase or priority, so declaration order decides). NoopChains gives the
// no-op chains of make bench; a chain of real plugins is another
// ChainTarget listing their files and configurations.
type ChainTarget struct {
	// Name is the target's name in -targets, the report and the JSON;
	// lower-case letters, digits and '-'.
	Name    string
	Plugins []ChainPlugin
	// Resources are extra configuration documents appended to the
	// generated configuration (a Redis cluster the plugins use, say).
	Resources string
	// Header is sent with every request of the load to this target (a
	// consumer name, an API key).
	Header map[string]string
	// Setup requests are sent to the gateway, in order, after it started
	// and before the load; each must answer 2xx (seeding a quota, say).
	Setup []SetupRequest
}

// SetupRequest is one request a chain target needs before its load.
type SetupRequest struct {
	Method string
	Path   string
	Header map[string]string
	Body   string
}

// ChainPlugin is one WasmPlugin of a chain. Exactly one of Wasm and
// TestPlugin is set.
type ChainPlugin struct {
	// Name is the WasmPlugin's metadata.name, unique within the chain.
	Name string
	// Wasm is the module's file; a relative path is taken from the
	// repository root.
	Wasm string
	// TestPlugin names a test plugin of package wasmtest ("go/noop"),
	// built on first use and cached.
	TestPlugin string
	// Config is the plugin's spec.defaultConfig; nil means {}.
	Config map[string]any
}

// NoopPlugin is the test plugin of the no-op chains: on request headers it
// reads :path (one hostcall) and continues.
const NoopPlugin = "go/noop"

// DefaultNoopChainSizes are the chain lengths make bench measures.
var DefaultNoopChainSizes = []int{1, 5, 10}

// NoopChainName is the target name of the no-op chain of n plugins.
func NoopChainName(n int) string { return "sluice-wasm" + strconv.Itoa(n) }

// NoopChains returns one target per size: sluice-wasmN, Sluice with N
// copies of the no-op plugin (noop-1 … noop-N), each with an empty
// configuration.
func NoopChains(sizes ...int) []ChainTarget {
	out := make([]ChainTarget, 0, len(sizes))
	for _, n := range sizes {
		c := ChainTarget{Name: NoopChainName(n)}
		for i := 1; i <= n; i++ {
			c.Plugins = append(c.Plugins, ChainPlugin{Name: "noop-" + strconv.Itoa(i), TestPlugin: NoopPlugin})
		}
		out = append(out, c)
	}
	return out
}

var (
	chainNameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	pluginNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
)

// validateChains reports every problem of the chain targets.
func validateChains(chains []ChainTarget) []error {
	var problems []error
	seen := map[string]bool{}
	for i, c := range chains {
		where := fmt.Sprintf("chain %q", c.Name)
		switch {
		case c.Name == "":
			problems = append(problems, fmt.Errorf("chain #%d: name is required", i+1))
			where = fmt.Sprintf("chain #%d", i+1)
		case slices.Contains(BaseTargets, c.Name):
			problems = append(problems, fmt.Errorf("%s: the name is taken by a built-in target", where))
		case seen[c.Name]:
			problems = append(problems, fmt.Errorf("%s: defined twice", where))
		case !chainNameRE.MatchString(c.Name):
			problems = append(problems, fmt.Errorf("%s: a name has lower-case letters, digits and '-'", where))
		}
		seen[c.Name] = true
		if len(c.Plugins) == 0 {
			problems = append(problems, fmt.Errorf("%s: no plugins (that is target sluice)", where))
		}
		names := map[string]bool{}
		for j, p := range c.Plugins {
			pw := fmt.Sprintf("%s: plugin %q", where, p.Name)
			switch {
			case p.Name == "":
				pw = fmt.Sprintf("%s: plugin #%d", where, j+1)
				problems = append(problems, fmt.Errorf("%s: name is required", pw))
			case names[p.Name]:
				problems = append(problems, fmt.Errorf("%s: listed twice (plugin names are unique within a chain)", pw))
			case !pluginNameRE.MatchString(p.Name):
				problems = append(problems, fmt.Errorf("%s: a name has lower-case letters, digits, '.' and '-'", pw))
			}
			names[p.Name] = true
			if (p.Wasm == "") == (p.TestPlugin == "") {
				problems = append(problems, fmt.Errorf("%s: set exactly one of Wasm (a file) and TestPlugin (a wasmtest name)", pw))
			}
		}
		for j, r := range c.Setup {
			if r.Method == "" || !strings.HasPrefix(r.Path, "/") {
				problems = append(problems, fmt.Errorf("%s: setup request #%d: needs a method and a path starting with /", where, j+1))
			}
		}
	}
	return problems
}

// ChainInfo is a chain target as run, recorded in the JSON.
type ChainInfo struct {
	Name      string            `json:"name"`
	Plugins   []PluginInfo      `json:"plugins"`
	Resources string            `json:"resources,omitempty"`
	Header    map[string]string `json:"header,omitempty"`
	Setup     []SetupRequest    `json:"setup,omitempty"`
}

// PluginInfo is one plugin of a chain as run.
type PluginInfo struct {
	Name string `json:"name"`
	// Wasm is the module's absolute path, SHA256 its checksum.
	Wasm       string         `json:"wasm"`
	SHA256     string         `json:"sha256"`
	TestPlugin string         `json:"test_plugin,omitempty"`
	Config     map[string]any `json:"config"`
}

// resolveChains builds the test plugins and checksums the modules of the
// chain targets that will run.
func (h *harness) resolveChains() error {
	h.chains = map[string]ChainInfo{}
	for _, c := range h.opts.Chains {
		if !slices.Contains(h.opts.Targets, c.Name) {
			continue
		}
		info := ChainInfo{Name: c.Name, Resources: c.Resources, Header: c.Header, Setup: c.Setup}
		for _, p := range c.Plugins {
			pi, err := h.resolvePlugin(p)
			if err != nil {
				return fmt.Errorf("target %s: plugin %s: %w", c.Name, p.Name, err)
			}
			info.Plugins = append(info.Plugins, pi)
		}
		h.chains[c.Name] = info
	}
	return nil
}

func (h *harness) resolvePlugin(p ChainPlugin) (PluginInfo, error) {
	path := p.Wasm
	if p.TestPlugin != "" {
		if h.built == nil {
			h.built = map[string]string{}
		}
		if path = h.built[p.TestPlugin]; path == "" {
			h.logf("test plugin %s: building or taking it from the cache (internal/wasmhost/wasmtest)", p.TestPlugin)
			var err error
			if path, err = wasmtest.Build(p.TestPlugin); err != nil {
				return PluginInfo{}, err
			}
			h.built[p.TestPlugin] = path
		}
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(h.root, path)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return PluginInfo{}, err
	}
	cfg := p.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	return PluginInfo{Name: p.Name, Wasm: path, SHA256: sum, TestPlugin: p.TestPlugin, Config: cfg}, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pluginStatus is the part of a plugin's entry in Sluice's /config_dump
// that the check reads.
type pluginStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error"`
}

// checkPlugins asks the gateway which plugins it runs (url answers like
// Sluice's /config_dump) and fails unless it runs exactly the chain's
// plugins, each ready. Sluice serves traffic even when a plugin failed to
// load (the plugin then applies its fail strategy, or is left out), so
// readiness alone would let a chain target quietly measure no chain.
func checkPlugins(ctx context.Context, url string, want []PluginInfo) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("plugin check: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("plugin check: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("plugin check: GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("plugin check: GET %s: %s", url, resp.Status)
	}
	var dump struct {
		Plugins []pluginStatus `json:"plugins"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		return fmt.Errorf("plugin check: GET %s: %w", url, err)
	}
	got := map[string]pluginStatus{}
	for _, st := range dump.Plugins {
		got[st.Name] = st
	}
	var problems []string
	for _, p := range want {
		st, ok := got[p.Name]
		switch {
		case !ok:
			problems = append(problems, p.Name+": not loaded")
		case st.State != "ready":
			problems = append(problems, fmt.Sprintf("%s: %s: %s", p.Name, st.State, st.Error))
		}
		delete(got, p.Name)
	}
	for name := range got {
		problems = append(problems, name+": loaded but not in the chain")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("plugin check: %d of %d plugins not as configured:\n    %s", len(problems), len(want), strings.Join(problems, "\n    "))
	}
	return nil
}

// runSetup sends a chain target's setup requests to the gateway at addr.
func runSetup(ctx context.Context, addr string, setup []SetupRequest) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i, r := range setup {
		req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.Path, strings.NewReader(r.Body))
		if err != nil {
			return fmt.Errorf("setup request #%d: %w", i+1, err)
		}
		for k, v := range r.Header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("setup request #%d (%s %s): %w", i+1, r.Method, r.Path, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("setup request #%d (%s %s): %s: %s", i+1, r.Method, r.Path, resp.Status, strings.TrimSpace(string(body)))
		}
	}
	return nil
}
