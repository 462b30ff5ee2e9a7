package loopguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// cacheDir is wazero's compilation cache for these tests. It outlives the
// test binary: the rewrite is deterministic, so a rerun compiles nothing.
var cacheDir = filepath.Join(os.TempDir(), "sluice-loopguard-test-wasm-cache")

// testPlugins are the test/plugins modules, one per toolchain.
var testPlugins = []string{"go/noop", "go/probe", "c/addheader", "rust/addheader", "as/addheader", "wasmgo/hello-rules"}

func TestInstrumentTestPlugins(t *testing.T) {
	for _, name := range testPlugins {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkPlugin(t, wasmtest.Plugin(t, name))
		})
	}
}

// builtinPlugins builds every plugins/<name> the way `make plugins` does,
// into a directory of the test, and returns the modules' paths.
func builtinPlugins(tb testing.TB) []string {
	tb.Helper()
	root, err := wasmtest.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dirs, err := filepath.Glob(filepath.Join(root, "plugins", "*", "main.go"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(dirs) == 0 {
		tb.Fatalf("no plugins under %s", filepath.Join(root, "plugins"))
	}
	out := tb.TempDir()
	var files []string
	for _, main := range dirs {
		dir := filepath.Dir(main)
		file := filepath.Join(out, filepath.Base(dir)+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", file, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("building %s: %v\n%s", dir, err, b)
		}
		files = append(files, file)
	}
	return files
}

func TestInstrumentBuiltinPlugins(t *testing.T) {
	for _, path := range builtinPlugins(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			wasm, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkPlugin(t, wasm)
		})
	}
}

// checkPlugin instruments a real module and compares what wazero sees of
// the original and of the result.
func checkPlugin(t *testing.T, orig []byte) {
	t.Helper()
	inst, err := Instrument(orig)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	if again, err := Instrument(orig); err != nil || !bytes.Equal(again, inst) {
		t.Errorf("instrumenting twice gives different results (err %v)", err)
	}
	if _, err := Instrument(inst); !errors.Is(err, errAlreadyInstrumented) {
		t.Errorf("instrumenting the result: %v, want %v", err, errAlreadyInstrumented)
	}
	t.Logf("%d bytes, %d instrumented (%+.2f%%)", len(orig), len(inst), 100*float64(len(inst)-len(orig))/float64(len(orig)))

	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer func() { _ = r.Close(ctx) }()
	origMod, err := r.CompileModule(ctx, orig)
	if err != nil {
		t.Fatalf("wazero rejects the original: %v", err)
	}
	instMod, err := r.CompileModule(ctx, inst)
	if err != nil {
		t.Fatalf("wazero rejects the instrumented module: %v", err)
	}

	want := append(imports(origMod.ImportedFunctions()), ImportModule+"."+ImportName+" [] -> []")
	if got := imports(instMod.ImportedFunctions()); !slices.Equal(got, want) {
		t.Errorf("imported functions:\n got %q\nwant %q", got, want)
	}
	for _, kind := range []struct {
		name       string
		orig, inst []string
	}{
		{"functions", exports(origMod.ExportedFunctions()), exports(instMod.ExportedFunctions())},
		{"memories", exports(origMod.ExportedMemories()), exports(instMod.ExportedMemories())},
	} {
		if !slices.Equal(kind.orig, kind.inst) {
			t.Errorf("exported %s:\n got %q\nwant %q", kind.name, kind.inst, kind.orig)
		}
	}

	// With the callbacks (proxy_on_*) dispatched, the module gains exactly
	// the dispatcher export.
	var callbacks []string
	for name := range origMod.ExportedFunctions() {
		if strings.HasPrefix(name, "proxy_on_") {
			callbacks = append(callbacks, name)
		}
	}
	slices.Sort(callbacks)
	disp, err := Instrument(orig, callbacks...)
	if err != nil {
		t.Fatalf("Instrument with the callbacks dispatched: %v", err)
	}
	dispMod, err := r.CompileModule(ctx, disp)
	if err != nil {
		t.Fatalf("wazero rejects the module with the dispatcher: %v", err)
	}
	wantExports := exports(origMod.ExportedFunctions())
	got := exports(dispMod.ExportedFunctions())
	i := slices.IndexFunc(got, func(e string) bool { return strings.HasPrefix(e, DispatchExport+" ") })
	if i < 0 {
		t.Fatalf("no %s among the exports %q", DispatchExport, got)
	}
	if got = slices.Delete(got, i, i+1); !slices.Equal(got, wantExports) {
		t.Errorf("exports besides the dispatcher:\n got %q\nwant %q", got, wantExports)
	}
}

// imports lists imported functions as "module.name params -> results".
func imports(defs []api.FunctionDefinition) []string {
	var out []string
	for _, d := range defs {
		module, name, _ := d.Import()
		out = append(out, module+"."+name+" "+types(d.ParamTypes())+" -> "+types(d.ResultTypes()))
	}
	return out
}

func types(vt []api.ValueType) string {
	var names []string
	for _, t := range vt {
		names = append(names, api.ValueTypeName(t))
	}
	return "[" + strings.Join(names, " ") + "]"
}

// exports lists export names, sorted, with the function types when the
// definitions are functions.
func exports[D any](defs map[string]D) []string {
	var out []string
	for name, d := range defs {
		if f, ok := any(d).(api.FunctionDefinition); ok {
			name += " " + types(f.ParamTypes()) + " -> " + types(f.ResultTypes())
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
