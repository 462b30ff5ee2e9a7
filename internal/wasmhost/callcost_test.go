package wasmhost

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero/api"

	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// BenchmarkStreamLifecycle measures the guest calls one stream costs a
// header-only plugin (context create, request headers, response headers,
// log, done, delete), without HTTP, with and without the loop guard.
func BenchmarkStreamLifecycle(b *testing.B) {
	wasm := wasmtest.Plugin(b, "go/noop")
	for _, tc := range guardCases {
		b.Run(tc.name, func(b *testing.B) {
			in := benchInstance(b, wasm, tc.name, tc.noGuard)
			b.ReportAllocs()
			for b.Loop() {
				in.mu.Lock()
				id := in.newContextID()
				root := in.root
				if _, err := in.call(in.fnContextCreate, id, uint64(id), uint64(root)); err != nil {
					b.Fatal(err)
				}
				_, _ = in.call(in.fnReqHeaders, id, uint64(id), 4, 1)
				_, _ = in.call(in.fnRespHeaders, id, uint64(id), 2, 1)
				_, _ = in.call(in.fnLog, id, uint64(id))
				_, _ = in.call(in.fnDone, id, uint64(id))
				_, _ = in.call(in.fnDelete, id, uint64(id))
				in.mu.Unlock()
			}
		})
	}
}

// BenchmarkStreamLifecycleCold is BenchmarkStreamLifecycle with the CPU
// caches and TLBs flushed between streams (32 MiB written), as they are
// when a gateway runs other plugins, the HTTP stack and the kernel between
// two calls into one instance. "stream" reports the cost of each of the
// six guest calls, in µs; "empty-export" the cost of one call of an
// export whose body is empty (the ABI marker): the host-to-guest entry
// path alone. ns/op includes the flush; the metrics are what to read.
func BenchmarkStreamLifecycleCold(b *testing.B) {
	wasm := wasmtest.Plugin(b, "go/noop")
	in := benchInstance(b, wasm, "loop-guard", false)
	junk := make([]byte, 32<<20)
	flush := func() {
		for i := 0; i < len(junk); i += 64 {
			junk[i]++
		}
	}
	b.Run("stream", func(b *testing.B) {
		names := []string{"context_create", "request_headers", "response_headers", "log", "done", "delete"}
		var took [6]time.Duration
		for b.Loop() {
			flush()
			in.mu.Lock()
			id := in.newContextID()
			calls := []func() error{
				func() error { _, err := in.call(in.fnContextCreate, id, uint64(id), uint64(in.root)); return err },
				func() error { _, err := in.call(in.fnReqHeaders, id, uint64(id), 4, 1); return err },
				func() error { _, err := in.call(in.fnRespHeaders, id, uint64(id), 2, 1); return err },
				func() error { _, err := in.call(in.fnLog, id, uint64(id)); return err },
				func() error { _, err := in.call(in.fnDone, id, uint64(id)); return err },
				func() error { _, err := in.call(in.fnDelete, id, uint64(id)); return err },
			}
			for i, call := range calls {
				start := time.Now()
				if err := call(); err != nil {
					b.Fatalf("%s: %v", names[i], err)
				}
				took[i] += time.Since(start)
			}
			in.mu.Unlock()
		}
		for i, d := range took {
			b.ReportMetric(float64(d.Nanoseconds())/1e3/float64(b.N), names[i]+"-µs")
		}
	})
	b.Run("empty-export", func(b *testing.B) {
		var fn api.Function
		for name := range in.mod.ExportedFunctionDefinitions() {
			if strings.HasPrefix(name, "proxy_abi_version_") {
				fn = in.mod.ExportedFunction(name)
			}
		}
		if fn == nil {
			b.Fatal("go/noop exports no proxy_abi_version_* function")
		}
		var took time.Duration
		for b.Loop() {
			flush()
			in.mu.Lock()
			start := time.Now()
			if _, err := in.call(&export{fn: fn}, 0); err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
			in.mu.Unlock()
		}
		b.ReportMetric(float64(took.Nanoseconds())/1e3/float64(b.N), "call-µs")
	})
}

// BenchmarkGuestJSON measures ordinary Go code inside a guest: one
// encoding/json decode and encode of a 200-byte chat request (export
// bench_json_roundtrip of go/noop), through the host's guest-call path,
// with and without the loop guard. Natively the same work takes a few
// microseconds.
func BenchmarkGuestJSON(b *testing.B) {
	wasm := wasmtest.Plugin(b, "go/noop")
	for _, tc := range guardCases {
		b.Run(tc.name, func(b *testing.B) {
			in := benchInstance(b, wasm, tc.name, tc.noGuard)
			fn := in.mod.ExportedFunction("bench_json_roundtrip")
			if fn == nil {
				b.Fatal("go/noop does not export bench_json_roundtrip")
			}
			in.mu.Lock()
			defer in.mu.Unlock()
			for b.Loop() {
				if n, err := in.call(&export{fn: fn, results: 1}, 0); err != nil || n == 0 {
					b.Fatalf("bench_json_roundtrip: %d, %v", n, err)
				}
			}
		})
	}
}

// guardCases run a benchmark with the loop guard (the default) and without.
var guardCases = []struct {
	name    string
	noGuard bool
}{{"loop-guard", false}, {"no-loop-guard", true}}

// benchInstance runs wasm as a plugin with one instance on its own
// runtime, with host metrics as in the gateway, closed when the benchmark
// ends, and returns the instance.
func benchInstance(b *testing.B, wasm []byte, name string, noGuard bool) *Instance {
	b.Helper()
	ctx := context.Background()
	rt, err := NewRuntime(ctx, RuntimeOptions{NoLoopGuard: noGuard, CacheDir: filepath.Join(os.TempDir(), "sluice-bench-wasm-cache-"+name)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Close(ctx) })
	m, err := rt.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	svc := &Services{Shared: NewShared(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: NewMetrics(prometheus.NewRegistry(), nil)}
	p, err := NewPlugin(ctx, rt, m, PluginSpec{Name: "bench", Config: []byte("{}"), PoolSize: 1}, svc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(ctx) })
	return p.pool.live()[0]
}

// BenchmarkGuestCall measures one warm top-level guest call through the
// host's call path: proxy_on_log of go/noop for a context the SDK does not
// know (two map lookups in the guest), timed for
// sluice_wasm_call_duration_seconds as in the gateway, and untimed.
func BenchmarkGuestCall(b *testing.B) {
	in := benchInstance(b, wasmtest.Plugin(b, "go/noop"), "loop-guard", false)
	timed := in.fnLog.lat
	if timed == nil {
		b.Fatal("proxy_on_log has no latency histogram")
	}
	for _, tc := range []struct {
		name string
		lat  *callHistogram
	}{{"timed", timed}, {"untimed", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			in.fnLog.lat = tc.lat
			defer func() { in.fnLog.lat = timed }()
			in.mu.Lock()
			defer in.mu.Unlock()
			for b.Loop() {
				if _, err := in.call(in.fnLog, 1<<30, 1<<30); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
