package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/config"
)

func TestNoopChains(t *testing.T) {
	chains := NoopChains(1, 5, 10)
	var names []string
	for _, c := range chains {
		names = append(names, c.Name)
	}
	if want := []string{"sluice-wasm1", "sluice-wasm5", "sluice-wasm10"}; !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	last := chains[2].Plugins
	if len(last) != 10 || last[0].Name != "noop-1" || last[9].Name != "noop-10" || last[9].TestPlugin != NoopPlugin || last[9].Wasm != "" {
		t.Errorf("sluice-wasm10 plugins: %+v", last)
	}
	if errs := validateChains(chains); len(errs) > 0 {
		t.Errorf("NoopChains invalid: %v", errs)
	}
	if got := DefaultOptions().AllTargets(); !slices.Equal(got, []string{"direct", "plain", "sluice", "sluice-wasm1", "sluice-wasm5", "sluice-wasm10", "sluice-ai6"}) {
		t.Errorf("default targets %q", got)
	}
}

// TestGatewayConfigParses loads the generated configuration of every chain
// length with Sluice's own loader: it must load without errors or
// warnings and declare the chain's plugins, in order, as configured.
func TestGatewayConfigParses(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "noop.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 5, 10} {
		t.Run(fmt.Sprintf("%d plugins", n), func(t *testing.T) {
			var plugins []PluginInfo
			for i := 1; i <= n; i++ {
				p := PluginInfo{Name: fmt.Sprintf("noop-%d", i), Wasm: wasm, SHA256: strings.Repeat("ab", 32)}
				if i == 2 { // a real plugin's configuration: nested, with quotes to escape
					p.Config = map[string]any{"provider": map[string]any{"type": "openai", "apiTokens": []any{`sk-"x"`}}, "timeout": 3000}
				}
				plugins = append(plugins, p)
			}
			path, err := writeGatewayConfig(dir, "target", gatewayConfigData{
				Listen: "127.0.0.1:18080", Admin: "127.0.0.1:19901", Upstream: "127.0.0.1:19000", Plugins: plugins,
			})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := config.Parse(path, data)
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, data)
			}
			if len(snap.Warnings) > 0 {
				t.Errorf("warnings: %v\n%s", snap.Warnings, data)
			}
			if len(snap.Routes) != 1 || len(snap.Clusters) != 1 || snap.Gateway.Spec.Admin.Address != "127.0.0.1:19901" {
				t.Errorf("gateway, route or cluster lost:\n%s", data)
			}
			if len(snap.WasmPlugins) != n {
				t.Fatalf("%d WasmPlugins, want %d:\n%s", len(snap.WasmPlugins), n, data)
			}
			for i, wp := range snap.WasmPlugins {
				want := plugins[i]
				wantCfg := want.Config
				if wantCfg == nil {
					wantCfg = map[string]any{}
				}
				if wp.Metadata.Name != want.Name || wp.Spec.URL != "file://"+wasm || wp.Spec.SHA256 != want.SHA256 ||
					fmt.Sprint(wp.Spec.DefaultConfig) != fmt.Sprint(wantCfg) ||
					wp.Spec.Phase != v1alpha1.PhaseUnspecified || wp.Spec.Priority != nil || len(wp.Spec.MatchRules) > 0 {
					t.Errorf("plugin %d: %+v, want %s from %s with %v", i, wp.Spec, want.Name, wasm, wantCfg)
				}
			}
		})
	}
}

func TestGatewayConfigWithPluginsGolden(t *testing.T) {
	dir := t.TempDir()
	plugins := []PluginInfo{
		{Name: "noop-1", Wasm: "/cache/go_noop.wasm", SHA256: strings.Repeat("0f", 32)},
		{Name: "ai-proxy", Wasm: "/plugins/ai-proxy.wasm", Config: map[string]any{"provider": map[string]any{"type": "openai"}}},
	}
	path, err := writeGatewayConfig(dir, "sluice-ai", gatewayConfigData{
		Listen: "127.0.0.1:18080", Admin: "127.0.0.1:19901", Upstream: "127.0.0.1:19000", Plugins: plugins,
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "sluice-ai-127_0_0_1_18080.yaml" {
		t.Errorf("config file %s", filepath.Base(path))
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "sluice-chain.yaml.golden", got)
}

func TestCheckPlugins(t *testing.T) {
	want := []PluginInfo{{Name: "noop-1"}, {Name: "noop-2"}}
	cases := []struct {
		name    string
		status  int
		body    string
		wantErr []string // empty: no error
	}{
		{"all ready", 200, `{"plugins":[{"name":"noop-1","state":"ready"},{"name":"noop-2","state":"ready","instances":2}],"hash":"x"}`, nil},
		{"one failed", 200, `{"plugins":[{"name":"noop-1","state":"ready"},{"name":"noop-2","state":"failed","error":"compile: bad magic"}]}`,
			[]string{"1 of 2 plugins", "noop-2: failed: compile: bad magic"}},
		{"one inactive, one missing, one extra", 200, `{"plugins":[{"name":"noop-1","state":"inactive"},{"name":"other","state":"ready"}]}`,
			[]string{"3 of 2 plugins", "noop-1: inactive", "noop-2: not loaded", "other: loaded but not in the chain"}},
		{"no plugins at all", 200, `{"config":{}}`, []string{"noop-1: not loaded", "noop-2: not loaded"}},
		{"not sluice", 404, `404 page not found`, []string{"404 Not Found"}},
		{"not JSON", 200, `ok`, []string{"invalid character"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			err := checkPlugins(context.Background(), srv.URL+"/config_dump", want)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("checkPlugins: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkPlugins accepted %s", tc.body)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestResolvePlugin(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "p.wasm"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &harness{root: root, opts: Options{Stderr: io.Discard}}
	got, err := h.resolvePlugin(ChainPlugin{Name: "p", Wasm: "p.wasm"})
	if err != nil {
		t.Fatal(err)
	}
	want := PluginInfo{Name: "p", Wasm: filepath.Join(root, "p.wasm"), Config: map[string]any{},
		SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolvePlugin = %+v, want %+v", got, want)
	}
	if _, err := h.resolvePlugin(ChainPlugin{Name: "q", Wasm: "missing.wasm"}); err == nil {
		t.Error("a missing module resolved")
	}
	if _, err := h.resolvePlugin(ChainPlugin{Name: "r", TestPlugin: "go/nonesuch"}); err == nil || !strings.Contains(err.Error(), "go/noop") {
		t.Errorf("unknown test plugin: %v, want an error listing the known ones", err)
	}
}

// TestGatewayConfigWithResources: a chain's extra documents end up in the
// generated configuration, which Sluice's loader accepts.
func TestGatewayConfigWithResources(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "noop.wasm")
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := "apiVersion: sluice.dev/v1alpha1\nkind: Cluster\nmetadata: {name: redis}\nspec:\n  type: redis\n  redis: {embedded: true}\n"
	path, err := writeGatewayConfig(dir, "sluice-ai", gatewayConfigData{
		Listen: "127.0.0.1:18080", Admin: "127.0.0.1:19901", Upstream: "127.0.0.1:19000",
		Plugins: []PluginInfo{{Name: "p", Wasm: wasm}}, Resources: strings.TrimSpace(res),
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, data)
	}
	if len(snap.Clusters) != 2 || snap.Clusters[1].Metadata.Name != "redis" || len(snap.WasmPlugins) != 1 {
		t.Errorf("extra resources lost:\n%s", data)
	}
}

func TestRunSetup(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Admin")+" "+string(b))
		if r.URL.Path == "/fail" {
			http.Error(w, "no quota admin here", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	err := runSetup(context.Background(), addr, []SetupRequest{
		{Method: "POST", Path: "/quota/refresh", Header: map[string]string{"X-Admin": "k"}, Body: "consumer=a&quota=9"},
		{Method: "GET", Path: "/quota"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"POST /quota/refresh k consumer=a&quota=9", "GET /quota  "}; !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	err = runSetup(context.Background(), addr, []SetupRequest{{Method: "POST", Path: "/fail"}})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "no quota admin here") {
		t.Errorf("a failing setup request gave %v", err)
	}
	if errs := validateChains([]ChainTarget{{Name: "x", Plugins: []ChainPlugin{{Name: "p", Wasm: "a.wasm"}}, Setup: []SetupRequest{{Path: "nope"}}}}); len(errs) != 1 {
		t.Errorf("a setup request without method and path: %v", errs)
	}
}
