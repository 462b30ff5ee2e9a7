package loopguard

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// BenchmarkInstrument rewrites build/plugins/ai-proxy.wasm (run `make
// plugins` first). ms/MB is the time per MiB of input, growth-% the size
// the rewrite adds.
func BenchmarkInstrument(b *testing.B) {
	var path string
	for _, p := range builtinPlugins(b) {
		if filepath.Base(p) == "ai-proxy.wasm" {
			path = p
		}
	}
	if path == "" {
		b.Fatal("no build/plugins/ai-proxy.wasm: run `make plugins` first")
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		if out, err = Instrument(wasm); err != nil {
			b.Fatal(err)
		}
	}
	mib := float64(len(wasm)) / (1 << 20)
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/mib, "ms/MB")
	b.ReportMetric(100*float64(len(out)-len(wasm))/float64(len(wasm)), "growth-%")
}

// BenchmarkLoop runs sum(1e6) of the test module (a tight loop of a
// million iterations) without a guard, under wazero's
// WithCloseOnContextDone, and instrumented: the cost the guard adds to a
// loop iteration.
func BenchmarkLoop(b *testing.B) {
	orig := runModule()
	inst, err := Instrument(orig)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name           string
		wasm           []byte
		closeOnContext bool
	}{
		{"unguarded", orig, false},
		{"CloseOnContextDone", orig, true},
		{"loopguard", inst, false},
	} {
		b.Run(bm.name, func(b *testing.B) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(bm.closeOnContext))
			defer func() { _ = r.Close(ctx) }()
			if _, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
				WithFunc(func(_ context.Context, x uint32) uint32 { return x + 1 }).Export("add1").
				Instantiate(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := r.NewHostModuleBuilder(ImportModule).NewFunctionBuilder().
				WithFunc(func(context.Context) {}).Export(ImportName).Instantiate(ctx); err != nil {
				b.Fatal(err)
			}
			m, err := r.Instantiate(ctx, bm.wasm)
			if err != nil {
				b.Fatal(err)
			}
			sum := m.ExportedFunction("sum")
			const n = 1_000_000
			for b.Loop() {
				if _, err := sum.Call(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/iteration")
		})
	}
}
