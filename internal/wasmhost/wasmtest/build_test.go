package wasmtest

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/imports/*.txt from the built plugins")

// shape is what the host must find in a plugin (host spec §2.1–§2.3 and
// spec/toolchains.md).
type shape struct {
	abi   string // ABI marker export
	alloc string // allocator export the host calls
	init  string // "_initialize", "start" (start section) or "none"
}

var shapes = map[string]shape{
	"go/probe":           {"proxy_abi_version_0_2_100", "proxy_on_memory_allocate", "_initialize"},
	"go/noop":            {"proxy_abi_version_0_2_100", "proxy_on_memory_allocate", "_initialize"},
	"go/bodyrewrite":     {"proxy_abi_version_0_2_100", "proxy_on_memory_allocate", "_initialize"},
	"wasmgo/hello-rules": {"proxy_abi_version_0_2_100", "proxy_on_memory_allocate", "_initialize"},
	"wasmgo/callout":     {"proxy_abi_version_0_2_100", "proxy_on_memory_allocate", "_initialize"},
	"c/addheader":        {"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "_initialize"},
	"rust/addheader":     {"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "none"},
	"as/addheader":       {"proxy_abi_version_0_2_0", "malloc", "start"},
}

// objdump is the part of `wasm-objdump -x` the checks need.
type objdump struct {
	imports []string // "module.name", in file order
	exports []string
	start   bool
}

func dump(t *testing.T, path string) objdump {
	t.Helper()
	out, err := exec.Command("wasm-objdump", "-x", path).CombinedOutput()
	if err != nil {
		t.Fatalf("wasm-objdump -x %s: %v\n%s\n(wasm-objdump comes from wabt: run scripts/test-deps.sh)", path, err, out)
	}
	var d objdump
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			section, _, _ = strings.Cut(strings.TrimSuffix(line, ":"), "[")
			if section == "Start" {
				d.start = true
			}
			continue
		}
		switch section {
		case "Import":
			if _, name, ok := strings.Cut(line, " <- "); ok {
				d.imports = append(d.imports, strings.TrimSpace(name))
			}
		case "Export":
			if _, name, ok := strings.Cut(line, " -> "); ok {
				d.exports = append(d.exports, strings.Trim(strings.TrimSpace(name), `"`))
			}
		}
	}
	return d
}

func TestBuildAll(t *testing.T) {
	// Build one after another: parallel cold Go builds on a 2-core machine
	// would each compile the standard library for wasip1.
	for _, name := range Names() {
		if _, err := Build(name); err != nil {
			t.Fatalf("%v", err)
		}
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			path := Path(t, name)
			b := Plugin(t, name)
			if len(b) < 8 || !bytes.Equal(b[:8], []byte("\x00asm\x01\x00\x00\x00")) {
				t.Fatalf("%s: not a wasm v1 module (starts %q)", path, b[:min(8, len(b))])
			}
			if out, err := exec.Command("wasm-validate", path).CombinedOutput(); err != nil {
				t.Errorf("wasm-validate %s: %v\n%s", path, err, out)
			}

			want := shapes[name]
			d := dump(t, path)
			exports := map[string]bool{}
			for _, e := range d.exports {
				exports[e] = true
			}
			for _, e := range []string{"memory", want.abi, want.alloc, "proxy_on_context_create", "proxy_on_request_headers"} {
				if !exports[e] {
					t.Errorf("missing export %q; exports: %s", e, strings.Join(d.exports, ", "))
				}
			}
			for _, e := range d.exports {
				if strings.HasPrefix(e, "proxy_abi_version_") && e != want.abi {
					t.Errorf("unexpected ABI marker %q (want only %q)", e, want.abi)
				}
			}
			init := "none"
			switch {
			case exports["_initialize"]:
				init = "_initialize"
			case d.start:
				init = "start"
			}
			if init != want.init {
				t.Errorf("initialisation: got %s, want %s", init, want.init)
			}
			if exports["_start"] {
				t.Errorf("exports _start: a reactor must not")
			}

			imports := uniqueSorted(d.imports)
			for _, imp := range imports {
				mod, fn, _ := strings.Cut(imp, ".")
				switch {
				case mod == "env" && strings.HasPrefix(fn, "proxy_"):
				case mod == "wasi_snapshot_preview1", mod == "wasi_unstable":
				default:
					t.Errorf("unexpected import %s", imp)
				}
			}
			t.Logf("%s: %d bytes, %s, init %s, imports:\n  %s", name, len(b), want.abi, init, strings.Join(imports, "\n  "))
			checkGolden(t, name, imports)
		})
	}
}

// checkGolden compares the plugin's import set with
// testdata/imports/<name>.txt; -update rewrites it. A change means the host
// must provide a different set of functions: review it.
func checkGolden(t *testing.T, name string, imports []string) {
	t.Helper()
	golden := filepath.Join("testdata", "imports", strings.ReplaceAll(name, "/", "_")+".txt")
	got := strings.Join(imports, "\n") + "\n"
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/wasmhost/wasmtest -update)", err)
	}
	if got != string(want) {
		t.Errorf("imports changed (update test/plugins/README.md, then go test -update):\n%s", setDiff(strings.Fields(string(want)), imports))
	}
}

func setDiff(want, got []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for _, s := range got {
		if !w[s] {
			out = append(out, "+ "+s)
		}
	}
	for _, s := range want {
		if !g[s] {
			out = append(out, "- "+s)
		}
	}
	return strings.Join(out, "\n")
}

func uniqueSorted(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func TestBuildUnknownPlugin(t *testing.T) {
	if _, err := Build("go/nope"); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("Build(go/nope) = %v, want an unknown-plugin error", err)
	}
}

func TestBuildReusesCacheAcrossRuns(t *testing.T) {
	t.Setenv("SLUICE_TESTPLUGIN_CACHE", t.TempDir())
	// build, not Build: this simulates two processes, so the per-process
	// sync.Once must not answer the second call.
	first, err := build("c/addheader", recipes["c/addheader"])
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := build("c/addheader", recipes["c/addheader"])
	if err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || !st.ModTime().Equal(st2.ModTime()) {
		t.Fatalf("second build gave %s (%v), first %s (%v): want the cached file", second, st2.ModTime(), first, st.ModTime())
	}
}

func TestCacheKeyFollowsSourcesAndToolchain(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "c", "addheader.c")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(src, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := func(version string) string {
		k, err := hashSources(dir, recipes["c/addheader"], tools{bin: "clang", version: version})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write("int a;")
	k1 := key("clang 14")
	if k := key("clang 14"); k != k1 {
		t.Fatalf("same inputs, different keys %s %s", k1, k)
	}
	write("int b;")
	k2 := key("clang 14")
	if k2 == k1 {
		t.Errorf("source changed, key stayed %s", k1)
	}
	if k3 := key("clang 15"); k3 == k2 {
		t.Errorf("toolchain changed, key stayed %s", k2)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !declaresModule(b, mainModule) {
		t.Fatalf("RepoRoot() = %s: go.mod there does not declare %s (%v)", root, mainModule, err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "plugins", "go.mod")); err != nil {
		t.Fatalf("RepoRoot() = %s: no test/plugins/go.mod: %v", root, err)
	}
}
