package loopguard

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// fuzzDispatch are the exports the fuzzers ask Instrument to dispatch:
// callbacks the seed plugins export, and runModule's exports.
var fuzzDispatch = []string{"proxy_on_context_create", "proxy_on_request_headers", "proxy_on_log",
	"proxy_on_http_call_response", "sum", "dispatch", "started", "boom", "callimport"}

// FuzzInstrument checks that no input makes Instrument panic, and that
// every module it produces decodes again (as an instrumented module).
func FuzzInstrument(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm, fuzzDispatch...)
		if err != nil {
			if out != nil {
				t.Fatalf("output %x with error %v", out, err)
			}
			return
		}
		if _, err := Instrument(out); !errors.Is(err, errAlreadyInstrumented) {
			t.Fatalf("instrumenting the output: %v, want %v\ninput  %x\noutput %x", err, errAlreadyInstrumented, wasm, out)
		}
	})
}

// FuzzInstrumentCompiles checks the decoder against wazero's: whenever
// wazero accepts an input that Instrument rewrites, it must accept the
// rewrite too.
func FuzzInstrumentCompiles(f *testing.F) {
	addSeeds(f)
	ctx := context.Background()
	// The interpreter validates like the compiler and compiles faster.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCoreFeatures(features).WithMemoryLimitPages(16))
	f.Cleanup(func() { _ = r.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm, fuzzDispatch...)
		if err != nil || !wazeroAccepts(ctx, r, wasm) {
			return
		}
		cm, err := r.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("wazero accepts the input but not its rewrite: %v\ninput  %x\noutput %x", err, wasm, out)
		}
		_ = cm.Close(ctx)
	})
}

// wazeroAccepts reports whether wazero compiles wasm. It skips inputs that
// crash wazero v1.12.0 itself rather than being rejected: a panic in
// validation, and vectors whose count (far beyond the section's size) makes
// the decoder allocate gigabytes.
func wazeroAccepts(ctx context.Context, r wazero.Runtime, wasm []byte) (ok bool) {
	if CheckCounts(wasm) != nil {
		return false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return false
	}
	_ = cm.Close(ctx)
	return true
}

// addSeeds seeds with the hand-written modules and the small test plugins
// (the Go ones are megabytes: too big to mutate).
func addSeeds(f *testing.F) {
	for _, tc := range instrumentCases() {
		f.Add(tc.in)
	}
	f.Add(runModule())
	for _, name := range []string{"c/addheader", "rust/addheader", "as/addheader"} {
		f.Add(wasmtest.Plugin(f, name))
	}
}
