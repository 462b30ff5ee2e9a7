package wasmhost_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/benchpair"
	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// benchGateway starts the whole gateway in-process in front of a fixed
// upstream, with the given test plugins, and returns its URL.
// wasm is extra spec.wasm settings.
func benchGateway(b *testing.B, wasm string, plugins ...string) string {
	b.Helper()
	var yaml strings.Builder
	yaml.WriteString(benchHead(b, wasm))
	yaml.WriteString(`---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: all}
spec:
  cluster: up
`)
	for i, p := range plugins {
		fmt.Fprintf(&yaml, `---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: p%d}
spec:
  url: file://%s
  defaultConfig: {from: "hello", to: "howdy"}
`, i, wasmtest.Path(b, p))
	}
	return startBench(b, yaml.String())
}

// startBench starts the gateway configured by yaml in-process and returns
// its URL.
func startBench(b *testing.B, yaml string) string {
	b.Helper()
	file := filepath.Join(b.TempDir(), "sluice.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	snap, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(context.Background(), snap, app.Options{Logger: logger, WasmCacheDir: filepath.Join(os.TempDir(), "sluice-bench-wasm-cache"), PoolSize: 2})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return "http://" + a.Gateway().Addr("main")
}

// BenchmarkRequest measures one POST through the gateway with no plugin,
// a header-only plugin and a body-rewriting plugin; the difference between
// the cases is the per-request cost of the plugin chain.
func BenchmarkRequest(b *testing.B) {
	body := `{"model":"mock-gpt","messages":[{"role":"user","content":"hello bench"}]}`
	for _, tc := range []struct {
		name    string
		plugins []string
	}{
		{"none", nil},
		{"noop", []string{"go/noop"}},
		{"bodyrewrite", []string{"go/bodyrewrite"}},
		{"noop-x5", []string{"go/noop", "go/noop", "go/noop", "go/noop", "go/noop"}},
		{"noop-no-loop-guard", []string{"go/noop"}},
		{"c-addheader", []string{"c/addheader"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			wasm := ""
			if strings.HasSuffix(tc.name, "no-loop-guard") {
				wasm = "loopGuard: false"
			}
			url := benchGateway(b, wasm, tc.plugins...)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			do := func() {
				resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for range 100 {
				do()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				do()
			}
		})
	}
}

// BenchmarkChainAdded measures what one plugin adds to a request. One
// gateway has two routes to the same upstream: /plain/ where the plugin is
// disabled (matchRules; skipped host-side) and /with/; one client sends
// sequential requests alternating between them, each timed on its own.
// Neighbouring requests share the connection, the machine's state and its
// drift, so the median of the pairwise differences ("added-µs", the figure
// issue 3 bounds) is far steadier than differences between separate runs
// or gateways. It also reports both medians.
// b.N pairs are sent.
//
//	go test -run '^$' -bench ChainAdded -benchtime 5000x ./internal/wasmhost
func BenchmarkChainAdded(b *testing.B) {
	for _, tc := range []struct {
		name, wasm string
		plugin     string
	}{
		{"noop", "", "go/noop"},
		{"noop-no-loop-guard", "loopGuard: false", "go/noop"},
		{"bodyrewrite", "", "go/bodyrewrite"},
		{"c-addheader", "", "c/addheader"},
		{"rust-addheader", "", "rust/addheader"},
		{"as-addheader", "", "as/addheader"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			url := pairGateway(b, tc.wasm, tc.plugin)
			benchpair.Run(b, url+"/plain/v1/chat/completions", url+"/with/v1/chat/completions", "plugin")
		})
	}
}

// pairGateway starts a gateway with routes /plain/ (the plugin disabled
// there by matchRules, so skipped host-side) and /with/ to one upstream
// and returns its URL.
func pairGateway(b *testing.B, wasm, plugin string) string {
	b.Helper()
	yaml := benchHead(b, wasm) + benchpair.Routes + fmt.Sprintf(`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: p}
spec:
  url: file://%s
  defaultConfig: {from: "hello", to: "howdy"}
  matchRules:
    - ingress: [plain]
      configDisable: true
`, wasmtest.Path(b, plugin))
	return startBench(b, yaml)
}

// benchHead starts an upstream answering a fixed chat completion and
// returns the Gateway document (wasm is extra spec.wasm settings) and a
// Cluster "up" for it.
func benchHead(b *testing.B, wasm string) string {
	return gatewayYAML(strings.TrimPrefix(benchpair.Upstream(b), "http://"), wasm)
}

// gatewayYAML is a test gateway (one listener on a free port, no admin, no
// access log, spec.wasm set to {wasm}) and the cluster "up" at upstream.
func gatewayYAML(upstream, wasm string) string {
	return fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: test}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {disabled: true}
  accessLog: {path: "off"}
  wasm: {%s}
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: up}
spec:
  endpoints: [{address: %q}]
`, wasm, upstream)
}

// BenchmarkCompile measures compiling a Go plugin cold and from the on-disk
// compilation cache.
func BenchmarkCompile(b *testing.B) {
	wasm := wasmtest.Plugin(b, "go/noop")
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rt.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			_ = rt.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := warm.Compile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		_ = warm.Close(ctx)
		b.ResetTimer()
		for b.Loop() {
			rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rt.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			_ = rt.Close(ctx)
		}
	})
}

// BenchmarkInstanceMemory reports the linear memory of a configured
// instance of a Go plugin.
func BenchmarkInstanceMemory(b *testing.B) {
	wasm := wasmtest.Plugin(b, "go/noop")
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.RuntimeOptions{CacheDir: filepath.Join(os.TempDir(), "sluice-bench-wasm-cache")})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	svc := &wasmhost.Services{Shared: wasmhost.NewShared(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var mem uint64
	for b.Loop() {
		p, err := wasmhost.NewPlugin(ctx, rt, m, wasmhost.PluginSpec{Name: "mem", Config: []byte("{}"), PoolSize: 1}, svc)
		if err != nil {
			b.Fatal(err)
		}
		_, mems := p.Instances()
		mem = mems[0]
		p.Close(ctx)
	}
	b.ReportMetric(float64(mem), "linear-bytes/instance")
}
