package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// TestInspect runs what `sluice plugin inspect` runs (wasmhost.Inspect) on
// real and hand-made modules: ABI version, every import with whether the
// host provides it, the exports, size and sha256 of the file, and why the
// host would refuse the module.
func TestInspect(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wasm        func(t *testing.T) []byte
		abi         string
		imports     []string // must be listed and provided
		missing     []string // must be listed and flagged
		exports     []string // must be listed
		notExported []string
		problem     string // "" = loadable
	}{
		{
			name: "go/probe", wasm: func(t *testing.T) []byte { return inspectReadPlugin(t, "go/probe") }, abi: "0.2.100",
			imports: []string{"env.proxy_http_call", "env.proxy_redis_call", "env.proxy_get_property",
				"env.proxy_call_foreign_function", "wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.random_get"},
			exports: []string{"proxy_abi_version_0_2_100", "_initialize", "proxy_on_memory_allocate",
				"proxy_on_context_create", "proxy_on_request_headers", "proxy_on_http_call_response", "proxy_on_redis_call_response"},
			notExported: []string{"_start"},
		},
		{
			name: "c/addheader", wasm: func(t *testing.T) []byte { return inspectReadPlugin(t, "c/addheader") }, abi: "0.2.1",
			imports: []string{"env.proxy_log", "env.proxy_get_header_map_value", "env.proxy_add_header_map_value", "env.proxy_send_local_response"},
			exports: []string{"proxy_abi_version_0_2_1", "_initialize", "proxy_on_memory_allocate", "proxy_on_context_create",
				"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_done", "proxy_on_delete"},
			notExported: []string{"proxy_on_response_headers", "proxy_on_request_body", "proxy_on_log", "_start"},
		},
		{
			name: "unknown import", wasm: func(*testing.T) []byte { return unknownImportWasm() }, abi: "0.2.1",
			missing: []string{"env.proxy_does_not_exist"},
			exports: []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create"},
			problem: "module imports functions the host does not provide: env.proxy_does_not_exist",
		},
		{
			name: "no ABI marker", wasm: func(*testing.T) []byte { return noABIWasm() }, abi: "unknown",
			exports: []string{"proxy_on_memory_allocate", "proxy_on_context_create"},
			problem: "missing or unknown Proxy-Wasm ABI version",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wasm := tc.wasm(t)
			ins, err := wasmhost.Inspect(context.Background(), wasm)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			sum := sha256.Sum256(wasm)
			if ins.SHA256 != hex.EncodeToString(sum[:]) || ins.Size != len(wasm) {
				t.Errorf("sha256 %s size %d, want %x size %d", ins.SHA256, ins.Size, sum, len(wasm))
			}
			if ins.ABI != tc.abi {
				t.Errorf("abi = %q, want %q", ins.ABI, tc.abi)
			}
			listed := map[string]bool{} // module.name → provided
			for _, im := range ins.Imports {
				listed[im.Module+"."+im.Name] = im.Provided
			}
			for _, want := range tc.imports {
				if provided, ok := listed[want]; !ok || !provided {
					t.Errorf("import %s: listed %v, provided %v; want listed and provided", want, ok, provided)
				}
			}
			for _, want := range tc.missing {
				if provided, ok := listed[want]; !ok || provided {
					t.Errorf("import %s: listed %v, provided %v; want listed and flagged as not provided", want, ok, provided)
				}
			}
			for name, provided := range listed {
				if !provided && !slices.Contains(tc.missing, name) {
					t.Errorf("import %s flagged as not provided", name)
				}
			}
			if !slices.IsSorted(ins.Exports) {
				t.Errorf("exports not sorted: %q", ins.Exports)
			}
			for _, want := range tc.exports {
				if !slices.Contains(ins.Exports, want) {
					t.Errorf("export %s not listed in %q", want, ins.Exports)
				}
			}
			for _, not := range tc.notExported {
				if slices.Contains(ins.Exports, not) {
					t.Errorf("export %s listed, but the module does not export it", not)
				}
			}
			switch {
			case tc.problem == "" && len(ins.Problems) > 0:
				t.Errorf("problems %q, want a loadable module", ins.Problems)
			case tc.problem != "" && (len(ins.Problems) != 1 || !strings.Contains(ins.Problems[0], tc.problem)):
				t.Errorf("problems %q, want one containing %q", ins.Problems, tc.problem)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		if _, err := wasmhost.Inspect(context.Background(), garbageWasm()); err == nil || !strings.Contains(err.Error(), "compile:") {
			t.Errorf("Inspect(garbage) error = %v, want a compile error", err)
		}
	})
}

// inspectReadPlugin reads a built test plugin from disk (the file the gateway
// would load), not a copy.
func inspectReadPlugin(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(wasmtest.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
