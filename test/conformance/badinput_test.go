package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

// ---------------------------------------------------------------------------
// Hand-assembled WebAssembly modules (no toolchain needed).

const (
	wasmI32 = 0x7f
	wasmI64 = 0x7e
)

// handImport is one imported function.
type handImport struct {
	module, name    string
	params, results []byte
}

// handFunc is one defined function; body is the expression without the
// locals declaration and the final `end`.
type handFunc struct {
	export          string // "" for none
	params, results []byte
	body            []byte
}

// handWasm is a module written byte by byte: imports, functions, one
// exported memory (unless noMemory) and an optional start section.
type handWasm struct {
	imports  []handImport
	funcs    []handFunc
	noMemory bool
	// start is the function index (imports first) run by the start
	// section; -1 for none.
	start int
}

func handULEB(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func handName(s string) []byte { return append(handULEB(uint32(len(s))), s...) }

func handSection(id byte, items [][]byte) []byte {
	body := handULEB(uint32(len(items)))
	for _, it := range items {
		body = append(body, it...)
	}
	return append(append([]byte{id}, handULEB(uint32(len(body)))...), body...)
}

func (m handWasm) bytes() []byte {
	var types [][]byte
	typeOf := func(params, results []byte) []byte {
		t := append([]byte{0x60}, handULEB(uint32(len(params)))...)
		t = append(t, params...)
		t = append(t, handULEB(uint32(len(results)))...)
		t = append(t, results...)
		for i, have := range types {
			if bytes.Equal(have, t) {
				return handULEB(uint32(i))
			}
		}
		types = append(types, t)
		return handULEB(uint32(len(types) - 1))
	}
	var imports, funcs, exports, code [][]byte
	for _, im := range m.imports {
		e := append(handName(im.module), handName(im.name)...)
		e = append(e, 0x00)
		imports = append(imports, append(e, typeOf(im.params, im.results)...))
	}
	for i, f := range m.funcs {
		funcs = append(funcs, typeOf(f.params, f.results))
		if f.export != "" {
			e := append(handName(f.export), 0x00)
			exports = append(exports, append(e, handULEB(uint32(len(m.imports)+i))...))
		}
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, 0x0b)
		code = append(code, append(handULEB(uint32(len(body))), body...))
	}
	if !m.noMemory {
		exports = append(exports, append(handName("memory"), 0x02, 0x00))
	}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, handSection(1, types)...)
	if len(imports) > 0 {
		out = append(out, handSection(2, imports)...)
	}
	out = append(out, handSection(3, funcs)...)
	if !m.noMemory {
		out = append(out, handSection(5, [][]byte{{0x00, 0x01}})...) // one page, no maximum
	}
	out = append(out, handSection(7, exports)...)
	if m.start >= 0 {
		s := handULEB(uint32(m.start))
		out = append(out, 8, byte(len(s)))
		out = append(out, s...)
	}
	return append(out, handSection(10, code)...)
}

// proxyWasm is the smallest module the host would accept: ABI marker
// (unless marker is ""), memory, allocator, context create, vm start and
// configure returning true. Callers add imports and functions.
func proxyWasm(marker string) handWasm {
	i32s := []byte{wasmI32, wasmI32}
	m := handWasm{start: -1}
	if marker != "" {
		m.funcs = append(m.funcs, handFunc{export: marker})
	}
	m.funcs = append(m.funcs,
		handFunc{export: "proxy_on_memory_allocate", params: []byte{wasmI32}, results: []byte{wasmI32},
			body: []byte{0x41, 0x80, 0x08}}, // i32.const 1024
		handFunc{export: "proxy_on_context_create", params: i32s},
		handFunc{export: "proxy_on_vm_start", params: i32s, results: []byte{wasmI32}, body: []byte{0x41, 0x01}},
		handFunc{export: "proxy_on_configure", params: i32s, results: []byte{wasmI32}, body: []byte{0x41, 0x01}},
	)
	return m
}

// The bad modules of the load-failure tests.
func garbageWasm() []byte {
	return []byte("this is not a wasm module, just garbage bytes \x00\x01\x02")
}

func noABIWasm() []byte { return proxyWasm("").bytes() }

func unknownImportWasm() []byte {
	m := proxyWasm("proxy_abi_version_0_2_1")
	m.imports = []handImport{{module: "env", name: "proxy_does_not_exist", params: []byte{wasmI32}, results: []byte{wasmI32}}}
	return m.bytes()
}

// trapInitializeWasm traps in its exported _initialize (reactor start).
func trapInitializeWasm() []byte {
	m := proxyWasm("proxy_abi_version_0_2_1")
	m.funcs = append(m.funcs, handFunc{export: "_initialize", body: []byte{0x00}}) // unreachable
	return m.bytes()
}

// trapStartSectionWasm traps in its start section (AssemblyScript style).
func trapStartSectionWasm() []byte {
	m := proxyWasm("proxy_abi_version_0_2_0")
	m.funcs = append(m.funcs, handFunc{body: []byte{0x00}})
	m.start = len(m.funcs) - 1
	return m.bytes()
}

// ---------------------------------------------------------------------------
// Helpers for this file.

// badWasmFile writes module bytes to a file and returns its file:// URL.
func badWasmFile(t *testing.T, name string, wasm []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}

// badPluginDoc renders a WasmPlugin whose url is given literally.
func badPluginDoc(name, url string, cfg any, extra string) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: %s}
spec:
  url: %q
  defaultConfig: %s
%s`, name, url, b, extra)
}

// badRouteDoc renders a prefix route to cluster "up".
func badRouteDoc(name, prefix string) string {
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: %s}
spec:
  match: {path: {prefix: %q}}
  cluster: up
`, name, prefix)
}

// badAdmin GETs an admin path and returns status and body.
func badAdmin(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// badMetric returns the value of the sample name{plugin="plugin"} from the
// admin /metrics text, and whether it exists.
func badMetric(t *testing.T, admin, name, plugin string) (float64, bool) {
	t.Helper()
	_, body := badAdmin(t, admin, "/metrics")
	return badMetricIn(body, name, plugin)
}

func badMetricIn(body []byte, name, plugin string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	want := `plugin="` + plugin + `"`
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, want) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// badReady is GET /readyz decoded.
type badReady struct {
	Status  string   `json:"status"`
	Details []string `json:"details"`
}

// badDumpPlugin is one entry of /config_dump plugins.
type badDumpPlugin struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	Error        string `json:"error"`
	FailStrategy string `json:"failStrategy"`
	SHA256       string `json:"sha256"`
}

func badConfigDumpPlugins(t *testing.T, admin string) map[string]badDumpPlugin {
	t.Helper()
	code, body := badAdmin(t, admin, "/config_dump")
	if code != 200 {
		t.Fatalf("/config_dump: %d %s", code, body)
	}
	var dump struct {
		Plugins []badDumpPlugin `json:"plugins"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		t.Fatalf("/config_dump: %v\n%s", err, body)
	}
	out := map[string]badDumpPlugin{}
	for _, p := range dump.Plugins {
		out[p.Name] = p
	}
	return out
}

// badGoodProbe is a probe that marks every request it sees with x-good: 1.
var badGoodProbe = map[string]any{"on": map[string]any{"request_headers": []any{
	map[string]any{"op": "set_header", "key": "x-good", "value": "1"}}}}

// badIsFailStream reports whether a response is the local reply of a
// FAIL_CLOSE plugin that failed.
func badIsFailStream(resp *http.Response, body string) bool {
	return resp.StatusCode == 503 && strings.Contains(body, `"code":"wasm_fail_stream"`)
}

// badLastSeen returns the last request the upstream saw for path.
func badLastSeen(u *upstream, path string) (seen, bool) {
	reqs := u.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Path == path {
			return reqs[i], true
		}
	}
	return seen{}, false
}

// ---------------------------------------------------------------------------
// Load failures.

// TestBadModuleLoadFailures loads one good plugin next to plugins that
// cannot load — a module that does not compile, one without an ABI marker,
// one importing a function the host lacks, one trapping in _initialize,
// one trapping in its start section, one whose sha256 does not match, one
// (wasm-go) rejecting its rule configuration and one (probe) returning
// false from proxy_on_configure — each once FAIL_CLOSE and once FAIL_OPEN,
// scoped to its own route. Every failure is reported with plugin name and
// reason in the log, /readyz, /config_dump and the
// sluice_wasm_plugin_ready metric; the good plugin keeps applying; a
// route that needs a failed plugin gets 503 wasm_fail_stream (FAIL_CLOSE)
// or is served without it (FAIL_OPEN).
func TestBadModuleLoadFailures(t *testing.T) {
	u := newUpstream(t)
	probeURL := wasmURL(t, "go/probe")
	type badCase struct {
		kind   string
		url    string
		cfg    any
		extra  string // more spec fields
		global bool   // applies everywhere (only FAIL_OPEN is generated)
		reason []string
	}
	cases := []badCase{
		{kind: "garbage", url: badWasmFile(t, "garbage", garbageWasm()),
			reason: []string{"compile:", "invalid magic number"}},
		{kind: "no-abi", url: badWasmFile(t, "no-abi", noABIWasm()),
			reason: []string{"missing or unknown Proxy-Wasm ABI version"}},
		{kind: "unknown-import", url: badWasmFile(t, "unknown-import", unknownImportWasm()),
			reason: []string{"does not provide", "env.proxy_does_not_exist"}},
		{kind: "trap-initialize", url: badWasmFile(t, "trap-initialize", trapInitializeWasm()),
			reason: []string{"instantiate:", "unreachable"}},
		{kind: "trap-start", url: badWasmFile(t, "trap-start", trapStartSectionWasm()),
			reason: []string{"instantiate:", "unreachable"}},
		{kind: "sha256", url: wasmURL(t, "c/addheader"), extra: "  sha256: " + strings.Repeat("ab", 32) + "\n",
			reason: []string{"sha256 mismatch", "the configuration expects " + strings.Repeat("ab", 32)}},
		{kind: "rules-config", url: wasmURL(t, "wasmgo/hello-rules"), cfg: map[string]any{"header": ""},
			reason: []string{"rejected its configuration"}},
		{kind: "probe-configure", url: probeURL, global: true,
			cfg:    map[string]any{"on": map[string]any{"configure": map[string]any{"steps": []any{}, "result": false}}},
			reason: []string{"rejected its configuration"}},
	}
	var res strings.Builder
	res.WriteString(clusterAndRoute(u))
	res.WriteString(badPluginDoc("good", probeURL, badGoodProbe, ""))
	type plug struct {
		name, route, strategy string
		c                     badCase
	}
	var plugs []plug
	for _, c := range cases {
		for _, strategy := range []string{"FAIL_CLOSE", "FAIL_OPEN"} {
			if c.global && strategy == "FAIL_CLOSE" {
				continue // would close every route; the unit of this test is a route
			}
			name := "bad-" + c.kind + "-" + map[string]string{"FAIL_CLOSE": "close", "FAIL_OPEN": "open"}[strategy]
			extra := c.extra + "  failStrategy: " + strategy + "\n"
			route := ""
			if !c.global {
				route = name
				res.WriteString(badRouteDoc(route, "/"+name+"/"))
				extra += fmt.Sprintf("  defaultConfigDisable: true\n  matchRules:\n  - ingress: [%s]\n    config: %s\n", route, badJSON(c.cfg))
			}
			res.WriteString(badPluginDoc(name, c.url, c.cfg, extra))
			plugs = append(plugs, plug{name: name, route: route, strategy: strategy, c: c})
		}
	}
	g := startGateway(t, res.String())

	// Log, /readyz, /config_dump, metric.
	code, body := badAdmin(t, g.Admin, "/readyz")
	var ready badReady
	if err := json.Unmarshal(body, &ready); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	if code != 200 || ready.Status != "ready" {
		t.Errorf("/readyz = %d %s; failed plugins must not take the gateway out of service", code, body)
	}
	dump := badConfigDumpPlugins(t, g.Admin)
	_, metrics := badAdmin(t, g.Admin, "/metrics")
	logs := g.logs.String()
	if v, ok := badMetricIn(metrics, "sluice_wasm_plugin_ready", "good"); !ok || v != 1 {
		t.Errorf("sluice_wasm_plugin_ready{plugin=good} = %v (present %v), want 1", v, ok)
	}
	if d := dump["good"]; d.State != "ready" {
		t.Errorf("config_dump good: %+v, want ready", d)
	}
	for _, p := range plugs {
		t.Run(p.name, func(t *testing.T) {
			detail := ""
			for _, d := range ready.Details {
				if strings.HasPrefix(d, "plugin "+p.name+": ") {
					detail = d
				}
			}
			d := dump[p.name]
			if d.State != "failed" || d.FailStrategy != p.strategy {
				t.Errorf("config_dump: %+v, want state failed, failStrategy %s", d, p.strategy)
			}
			var logLine string
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "plugin failed to load") && strings.Contains(l, "plugin="+p.name+" ") {
					logLine = l
				}
			}
			t.Logf("log: %s", logLine)
			for _, r := range p.c.reason {
				if !strings.Contains(detail, r) {
					t.Errorf("/readyz detail for %s = %q, want it to contain %q (details %q)", p.name, detail, r, ready.Details)
				}
				if !strings.Contains(d.Error, r) {
					t.Errorf("config_dump error = %q, want it to contain %q", d.Error, r)
				}
				if !strings.Contains(logLine, r) {
					t.Errorf("log line %q, want it to contain %q", logLine, r)
				}
			}
			if v, ok := badMetricIn(metrics, "sluice_wasm_plugin_ready", p.name); !ok || v != 0 {
				t.Errorf("sluice_wasm_plugin_ready{plugin=%s} = %v (present %v), want 0", p.name, v, ok)
			}
			if p.route == "" {
				return
			}
			path := "/" + p.route + "/x"
			resp, body := g.Do("GET", path, "")
			switch p.strategy {
			case "FAIL_CLOSE":
				if !badIsFailStream(resp, body) || !strings.Contains(body, "plugin "+p.name+" is not available") {
					t.Errorf("GET %s = %d %q, want 503 wasm_fail_stream naming the plugin", path, resp.StatusCode, body)
				}
				if _, ok := badLastSeen(u, path); ok {
					t.Errorf("upstream saw %s although the FAIL_CLOSE plugin failed", path)
				}
			case "FAIL_OPEN":
				r, ok := badLastSeen(u, path)
				if resp.StatusCode != 200 || !ok {
					t.Fatalf("GET %s = %d %q (upstream saw it: %v), want 200 without the failed plugin", path, resp.StatusCode, body, ok)
				}
				if r.Header.Get("x-good") != "1" {
					t.Errorf("upstream headers %v: the good plugin did not apply", r.Header)
				}
			}
		})
	}
	// The good plugin applies on every other route.
	resp, _ := g.Do("GET", "/elsewhere", "")
	r, ok := badLastSeen(u, "/elsewhere")
	if resp.StatusCode != 200 || !ok || r.Header.Get("x-good") != "1" {
		t.Errorf("GET /elsewhere = %d, upstream saw %v %v: want 200 with x-good from the good plugin", resp.StatusCode, ok, r.Header)
	}
	eventually(t, 10*time.Second, "access log lines with wasm_fail_stream", func() bool {
		for _, l := range g.AccessLog() {
			if l["response_details"] == "wasm_fail_stream" && strings.HasPrefix(fmt.Sprint(l["path"]), "/bad-garbage-close/") {
				return true
			}
		}
		return false
	})
}

func badJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// Guest misbehaviour at run time.

// badLoopingProbe loops forever in request headers of requests with a body
// (end_of_stream false) and otherwise marks the request x-looper: alive.
var badLoopingProbe = map[string]any{"name": "looper", "on": map[string]any{"request_headers": []any{
	map[string]any{"op": "log", "message": "entering an endless loop", "when": "not_eos"},
	map[string]any{"op": "loop", "when": "not_eos"},
	map[string]any{"op": "set_header", "key": "x-looper", "value": "alive"},
}}}

// TestGuestLoopWatchdogKillsCall: with the watchdog on, an endless guest
// loop is cut off: the FAIL_CLOSE plugin answers 503 wasm_fail_stream, the
// FAIL_OPEN one is skipped, the crash is counted, the instance is replaced,
// and the plugins serve later requests.
func TestGuestLoopWatchdogKillsCall(t *testing.T) {
	for _, strategy := range []string{"FAIL_CLOSE", "FAIL_OPEN"} {
		t.Run(strategy, func(t *testing.T) {
			u := newUpstream(t)
			g := startGateway(t, clusterAndRoute(u)+
				plugin("looper", "go/probe", badLoopingProbe, "  failStrategy: "+strategy+"\n")+
				plugin("good", "go/probe", badGoodProbe, ""),
				func(o *app.Options) { o.WasmWatchdog = 2 * time.Second })
			start := time.Now()
			resp, body := g.Do("POST", "/loop", "payload")
			took := time.Since(start)
			switch strategy {
			case "FAIL_CLOSE":
				if !badIsFailStream(resp, body) {
					t.Fatalf("POST /loop = %d %q, want 503 wasm_fail_stream", resp.StatusCode, body)
				}
				if _, ok := badLastSeen(u, "/loop"); ok {
					t.Errorf("upstream saw /loop although the FAIL_CLOSE plugin was killed")
				}
			case "FAIL_OPEN":
				r, ok := badLastSeen(u, "/loop")
				if resp.StatusCode != 200 || !ok || r.Body != "payload" || r.Header.Get("x-good") != "1" {
					t.Fatalf("POST /loop = %d %q (upstream %v %+v), want 200 served without the looping plugin", resp.StatusCode, body, ok, r)
				}
			}
			for _, l := range strings.Split(g.logs.String(), "\n") {
				if strings.Contains(l, "plugin=looper") && strings.Contains(l, "level=ERROR") {
					t.Logf("log: %s", l)
				}
			}
			if took < 2*time.Second {
				t.Errorf("answered after %s, before the 2s watchdog could fire", took)
			}
			if !langLogHas(g.logs.String(), "plugin failed on a request", "plugin=looper", "phase=request_headers",
				"request_id=", "fail_strategy="+strategy, "watchdog: guest call ran longer than 2s") {
				t.Errorf("no 'plugin failed on a request' log line naming looper, the phase, the request and the watchdog")
			}
			if v, _ := badMetric(t, g.Admin, "sluice_wasm_crashes_total", "looper"); v != 1 {
				t.Errorf("sluice_wasm_crashes_total{plugin=looper} = %v, want 1", v)
			}
			eventually(t, 30*time.Second, "the killed instance to be replaced", func() bool {
				v, _ := badMetric(t, g.Admin, "sluice_wasm_instances", "looper")
				return v == 2 && strings.Contains(g.logs.String(), "plugin instance replaced after a crash")
			})
			// Both instances serve again (pool size 2: send a few).
			for i := range 4 {
				path := fmt.Sprintf("/after/%d", i)
				resp, body := g.Do("GET", path, "")
				r, ok := badLastSeen(u, path)
				if resp.StatusCode != 200 || !ok || r.Header.Get("x-looper") != "alive" || r.Header.Get("x-good") != "1" {
					t.Fatalf("GET %s = %d %q (upstream %v %v), want 200 through both plugins", path, resp.StatusCode, body, ok, r.Header)
				}
			}
		})
	}
}

// TestGuestHugeAllocationFails: a guest that asks for gigabytes hits the
// runtime's memory limit; the instance dies, the fail strategy applies,
// and the gateway keeps serving (also through a replacement instance).
func TestGuestHugeAllocationFails(t *testing.T) {
	hog := map[string]any{"on": map[string]any{"request_headers": []any{
		map[string]any{"op": "alloc", "mib": 3072, "when": "not_eos", "to": "header:x-allocated"},
		map[string]any{"op": "set_header", "key": "x-hog", "value": "alive"},
	}}}
	for _, strategy := range []string{"FAIL_CLOSE", "FAIL_OPEN"} {
		t.Run(strategy, func(t *testing.T) {
			u := newUpstream(t)
			g := startGateway(t, clusterAndRoute(u)+
				plugin("hog", "go/probe", hog, "  failStrategy: "+strategy+"\n")+
				plugin("good", "go/probe", badGoodProbe, ""))
			resp, body := g.Do("POST", "/hog", "payload")
			r, ok := badLastSeen(u, "/hog")
			switch strategy {
			case "FAIL_CLOSE":
				if !badIsFailStream(resp, body) || ok {
					t.Fatalf("POST /hog = %d %q (upstream saw it: %v), want 503 wasm_fail_stream", resp.StatusCode, body, ok)
				}
			case "FAIL_OPEN":
				if resp.StatusCode != 200 || !ok || r.Header.Get("x-allocated") != "" || r.Header.Get("x-good") != "1" {
					t.Fatalf("POST /hog = %d %q (upstream %v %v), want 200 without the hog", resp.StatusCode, body, ok, r.Header)
				}
			}
			logs := g.logs.String()
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "out of memory") || strings.Contains(l, "crashed") {
					t.Logf("log: %s", l)
				}
			}
			if !strings.Contains(logs, "out of memory") {
				t.Errorf("the guest's out-of-memory report is not in the log")
			}
			if !langLogHas(logs, "plugin failed on a request", "plugin=hog", "phase=request_headers", "request_id=",
				"fail_strategy="+strategy, "wasm error: unreachable", "wasm stack trace") {
				t.Errorf("no 'plugin failed on a request' log line naming hog, the phase, the request and the trap")
			}
			if v, _ := badMetric(t, g.Admin, "sluice_wasm_crashes_total", "hog"); v != 1 {
				t.Errorf("sluice_wasm_crashes_total{plugin=hog} = %v, want 1", v)
			}
			eventually(t, 30*time.Second, "the dead instance to be replaced", func() bool {
				v, _ := badMetric(t, g.Admin, "sluice_wasm_instances", "hog")
				return v == 2
			})
			for i := range 4 {
				path := fmt.Sprintf("/after/%d", i)
				resp, _ := g.Do("GET", path, "")
				r, ok := badLastSeen(u, path)
				if resp.StatusCode != 200 || !ok || r.Header.Get("x-hog") != "alive" || r.Header.Get("x-good") != "1" {
					t.Fatalf("GET %s = %d (upstream %v %v), want 200 through both plugins", path, resp.StatusCode, ok, r.Header)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// An endless loop without the watchdog, in a child process.
//
// Without the watchdog nothing can stop the looping call, and the instance
// lock stays held for ever, so the gateway cannot shut down cleanly: the
// test runs the gateway in a child process (this test binary, re-executed
// with stuckChildEnv set) and kills it at the end.

const stuckChildEnv = "SLUICE_CONFORMANCE_STUCK_CHILD"

func init() {
	if cfg := os.Getenv(stuckChildEnv); cfg != "" {
		os.Exit(stuckChild(cfg))
	}
}

// TestGuestLoopWithoutWatchdog: with the default (no watchdog) a guest
// stuck in an endless loop keeps its instance, but the process stays
// healthy: garbage collection completes, the other instance of the same
// plugin and the other plugins serve, and the admin endpoints answer.
func TestGuestLoopWithoutWatchdog(t *testing.T) {
	u := newUpstream(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: stuck}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: %q}
---
%s%s%s`, filepath.Join(dir, "access.log"), clusterAndRoute(u),
		badPluginDoc("looper", wasmURL(t, "go/probe"), badLoopingProbe, "  failStrategy: FAIL_CLOSE\n"),
		badPluginDoc("good", wasmURL(t, "go/probe"), badGoodProbe, ""))
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stuckChildEnv+"="+cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("--- child gateway log ---\n%s", logs.String())
		}
	})
	addrs := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "LISTENING" {
				addrs <- f[1:]
				return
			}
		}
		close(addrs)
	}()
	var gwURL, admin string
	select {
	case a, ok := <-addrs:
		if !ok {
			t.Fatalf("child gateway did not start")
		}
		gwURL, admin = "http://"+a[0], "http://"+a[1]
	case <-exited:
		t.Fatalf("child gateway exited before listening")
	case <-time.After(2 * time.Minute):
		t.Fatalf("child gateway did not start within 2m")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(gwURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Park one request in the endless loop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuckDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gwURL+"/stuck", strings.NewReader("payload"))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		stuckDone <- err
	}()
	eventually(t, time.Minute, "the looper to enter its loop", func() bool {
		return strings.Contains(logs.String(), "entering an endless loop")
	})
	gcBefore := childGCCount(t, admin)
	// The child forces a GC every 20ms; wait for several while the guest spins.
	eventually(t, time.Minute, "garbage collections while the guest spins", func() bool {
		return childGCCount(t, admin) >= gcBefore+5
	})
	for i := range 6 {
		path := fmt.Sprintf("/ok/%d", i)
		resp, body := get(path)
		r, ok := badLastSeen(u, path)
		if resp.StatusCode != 200 || !ok || r.Header.Get("x-looper") != "alive" || r.Header.Get("x-good") != "1" {
			t.Fatalf("GET %s = %d %q (upstream %v %v), want 200 through the looper's other instance and the good plugin", path, resp.StatusCode, body, ok, r.Header)
		}
		// The access log line is written after the plugins released the
		// stream. Until then the free instance still counts it, ties with
		// the stuck one, and the pool could pin the next stream there.
		eventually(t, time.Minute, "the access log line of "+path, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			return bytes.Contains(b, []byte(`"path":"`+path+`"`))
		})
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := badAdmin(t, admin, p); code != 200 {
			t.Errorf("%s = %d %s while a guest spins", p, code, body)
		}
	}
	select {
	case err := <-stuckDone:
		t.Fatalf("the looping request finished (%v); without a watchdog it cannot", err)
	default:
	}
	if _, ok := badLastSeen(u, "/stuck"); ok {
		t.Errorf("upstream saw the stuck request")
	}
}

// childGCCount reads go_gc_duration_seconds_count from the child's metrics.
func childGCCount(t *testing.T, admin string) float64 {
	t.Helper()
	_, body := badAdmin(t, admin, "/metrics")
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "go_gc_duration_seconds_count ") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	t.Fatalf("no go_gc_duration_seconds_count in /metrics")
	return 0
}

// stuckChild runs the gateway of TestGuestLoopWithoutWatchdog: it prints
// "LISTENING <listener> <admin>", forces a garbage collection every 20ms
// (a collection must stop every goroutine, the one running the guest
// included) and exits when stdin closes. It never shuts the gateway down:
// the looping call holds its instance for ever.
func stuckChild(cfgFile string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	snap, err := config.Load(cfgFile)
	if err != nil {
		logger.Error("config", "error", err)
		return 2
	}
	a, err := app.New(context.Background(), snap, app.Options{Logger: logger, WasmCacheDir: cacheDir, PoolSize: 2})
	if err != nil {
		logger.Error("app", "error", err)
		return 2
	}
	if err := a.Start(context.Background()); err != nil {
		logger.Error("start", "error", err)
		return 2
	}
	fmt.Printf("LISTENING %s %s\n", a.Gateway().Addr("main"), a.AdminAddr())
	go func() {
		for {
			time.Sleep(20 * time.Millisecond)
			runtime.GC()
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
