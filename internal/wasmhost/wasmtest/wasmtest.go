// Package wasmtest builds the Proxy-Wasm test plugins under test/plugins
// (Go, wasm-go, C, Rust, AssemblyScript) for the host's tests and hands
// them out as bytes or file paths.
//
// A plugin is built on first use, once per process, and cached across runs
// in a directory keyed by a hash of its sources and the toolchain version
// ($SLUICE_TESTPLUGIN_CACHE, else os.UserCacheDir()/sluice-testplugins).
// A missing toolchain or a failed build fails the calling test with the
// compiler's full output; it never skips. scripts/test-deps.sh installs
// the toolchains.
//
// It must not import the plugin SDKs: the plugins are built in their own
// module (test/plugins) by the go command, not linked into the tests.
package wasmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// mainModule is the module whose go.mod marks the repository root.
const mainModule = "github.com/sluicegw/sluice"

// Go builds run in test/plugins with this environment. GONOSUMDB: the
// Higress modules' pseudo-versions are not in the public checksum database;
// test/plugins/go.sum pins them, so builds are read-only (-mod=readonly)
// and never edit test/plugins/go.mod.
var goEnv = []string{
	"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0",
	"GOFLAGS=-mod=readonly -buildvcs=false",
	"GONOSUMDB=github.com/higress-group", "GOWORK=off", "GOTOOLCHAIN=local",
}

// recipe says how one plugin is built.
type recipe struct {
	lang string // go, c, rust, as
	dir  string // working directory, relative to test/plugins
	// sources are globs (relative to test/plugins) whose files are hashed.
	sources []string
}

var recipes = map[string]recipe{
	"go/probe":           goRecipe("go/probe"),
	"go/noop":            goRecipe("go/noop"),
	"go/bodyrewrite":     goRecipe("go/bodyrewrite"),
	"wasmgo/hello-rules": goRecipe("wasmgo/hello-rules"),
	"wasmgo/callout":     goRecipe("wasmgo/callout"),
	"c/addheader":        {lang: "c", dir: "c", sources: []string{"c/addheader.c"}},
	"rust/addheader":     {lang: "rust", dir: "rust", sources: []string{"rust/addheader.rs"}},
	"as/addheader": {lang: "as", dir: "as", sources: []string{
		"as/assembly/*.ts", "as/package.json", "as/package-lock.json",
	}},
}

func goRecipe(pkg string) recipe {
	return recipe{lang: "go", dir: ".", sources: []string{pkg + "/*", "go.mod", "go.sum"}}
}

// Names lists every test plugin, sorted.
func Names() []string {
	names := make([]string, 0, len(recipes))
	for n := range recipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Plugin returns the wasm bytes of the named test plugin, building it if
// needed.
func Plugin(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, name))
	if err != nil {
		t.Fatalf("test plugin %s: %v", name, err)
	}
	return b
}

// Path returns the file path of the named test plugin's wasm, building it
// if needed. The file is shared: do not modify it.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := Build(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

type result struct {
	once sync.Once
	path string
	err  error
}

var (
	mu      sync.Mutex
	results = map[string]*result{}
)

// Build builds the named plugin (once per process) and returns the path of
// its wasm file. For use from TestMain, where there is no testing.TB.
func Build(name string) (string, error) {
	rc, ok := recipes[name]
	if !ok {
		return "", fmt.Errorf("test plugin %q: unknown (known: %s)", name, strings.Join(Names(), ", "))
	}
	mu.Lock()
	r := results[name]
	if r == nil {
		r = &result{}
		results[name] = r
	}
	mu.Unlock()
	r.once.Do(func() {
		r.path, r.err = build(name, rc)
		if r.err != nil {
			r.err = fmt.Errorf("test plugin %s: %w", name, r.err)
		}
	})
	return r.path, r.err
}

func build(name string, rc recipe) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	plugins := filepath.Join(root, "test", "plugins")
	tc, err := toolchain(rc.lang, plugins)
	if err != nil {
		return "", err
	}
	key, err := hashSources(plugins, rc, tc)
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, strings.ReplaceAll(name, "/", "_")+"-"+key+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	// Serialise builds across test binaries that run in parallel (go test
	// ./... on 2 cores): a second builder of the same plugin finds the file
	// when it gets the lock, and cold Go builds do not compete for the CPU.
	unlock, err := lockFile(filepath.Join(cache, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	tmp, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	wasm := filepath.Join(tmp, "plugin.wasm")
	cmd := command(rc, tc, plugins, name, wasm)
	fmt.Fprintf(os.Stderr, "building test plugin %s… (%s)\n", name, strings.Join(cmd.Args, " "))
	start := time.Now()
	output, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build failed: %s (in %s): %v\n%s", strings.Join(cmd.Args, " "), cmd.Dir, err, output)
	}
	if _, err := os.Stat(wasm); err != nil {
		return "", fmt.Errorf("build produced no %s: %s\n%s", wasm, strings.Join(cmd.Args, " "), output)
	}
	if err := os.Rename(wasm, out); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "built test plugin %s in %s\n", name, time.Since(start).Round(10*time.Millisecond))
	return out, nil
}

// tools are the resolved toolchain binaries and their version text.
type tools struct {
	bin     string
	version string
}

func toolchain(lang, plugins string) (tools, error) {
	switch lang {
	case "go":
		bin, err := goBinary()
		if err != nil {
			return tools{}, err
		}
		v, err := run(plugins, append(os.Environ(), goEnv...), bin, "env", "GOVERSION")
		return tools{bin, v}, err
	case "c":
		bin, err := lookTool("clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32")
		if err != nil {
			return tools{}, err
		}
		v, err := run(plugins, nil, bin, "--version")
		return tools{bin, v}, err
	case "rust":
		// Debian's rustc carries the wasm32 std; a rustup rustc on PATH may not.
		bin := "/usr/bin/rustc"
		if _, err := os.Stat(bin); err != nil {
			return tools{}, fmt.Errorf("%s missing (run scripts/test-deps.sh: apt-get install rustc libstd-rust-dev-wasm32)", bin)
		}
		v, err := run(plugins, nil, bin, "--version")
		return tools{bin, v}, err
	case "as":
		dir := filepath.Join(plugins, "as")
		bin := filepath.Join(dir, "node_modules", ".bin", "asc")
		if _, err := os.Stat(bin); err != nil {
			return tools{}, fmt.Errorf("%s missing (run scripts/test-deps.sh, which runs npm ci in test/plugins/as)", bin)
		}
		node, err := lookTool("node", "apt-get install nodejs npm")
		if err != nil {
			return tools{}, err
		}
		nv, err := run(dir, nil, node, "--version")
		if err != nil {
			return tools{}, err
		}
		var versions []string
		for _, pkg := range []string{"assemblyscript", "@solo-io/proxy-runtime"} {
			b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
			if err != nil {
				return tools{}, fmt.Errorf("%v (run scripts/test-deps.sh)", err)
			}
			versions = append(versions, string(b))
		}
		return tools{bin, nv + strings.Join(versions, "\n")}, nil
	}
	return tools{}, fmt.Errorf("unknown language %q", lang)
}

func command(rc recipe, tc tools, plugins, name, out string) *exec.Cmd {
	var cmd *exec.Cmd
	switch rc.lang {
	case "go":
		cmd = exec.Command(tc.bin, "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w",
			"-o", out, "./"+name)
		cmd.Env = append(os.Environ(), goEnv...)
	case "c":
		cmd = exec.Command(tc.bin, "--target=wasm32-wasi", "-O2", "-Wall", "-Wextra", "-Werror",
			"-mexec-model=reactor", "-Wl,--strip-all", "-o", out, "addheader.c")
	case "rust":
		cmd = exec.Command(tc.bin, "--edition", "2021", "--crate-type", "cdylib",
			"--target", "wasm32-unknown-unknown", "-C", "opt-level=s", "-C", "panic=abort",
			"-C", "strip=symbols", "-o", out, "addheader.rs")
	case "as":
		cmd = exec.Command(tc.bin, "assembly/index.ts", "-b", out,
			"--use", "abort=abort_proc_exit", "--optimize")
	}
	cmd.Dir = filepath.Join(plugins, rc.dir)
	return cmd
}

func hashSources(plugins string, rc recipe, tc tools) (string, error) {
	h := sha256.New()
	// The tool's base name, not its path: a fresh clone elsewhere (CI) has
	// its own test/plugins/as/node_modules and must still hit the cache.
	fmt.Fprintf(h, "recipe %s %s\ntoolchain %s\n%s\n", rc.lang, rc.dir, filepath.Base(tc.bin), tc.version)
	fmt.Fprintf(h, "%s\n", strings.Join(command(rc, tc, plugins, "X", "OUT").Args[1:], " "))
	var files []string
	for _, g := range rc.sources {
		matches, err := filepath.Glob(filepath.Join(plugins, g))
		if err != nil {
			return "", err
		}
		if len(matches) == 0 {
			return "", fmt.Errorf("no sources match %s in %s", g, plugins)
		}
		files = append(files, matches...)
	}
	sort.Strings(files)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(plugins, f)
		fmt.Fprintf(h, "file %s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func cacheDir() (string, error) {
	dir := os.Getenv("SLUICE_TESTPLUGIN_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "sluice-testplugins")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("test plugin cache: %w", err)
	}
	return dir, nil
}

func goBinary() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("go command not found on PATH or in $GOROOT/bin")
}

func lookTool(name, install string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH (run scripts/test-deps.sh: %s)", name, install)
	}
	return p, nil
}

func run(dir string, env []string, bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(bytes.TrimSpace(out)), nil
}

// RepoRoot finds the repository root: the nearest directory at or above the
// working directory whose go.mod declares module github.com/sluicegw/sluice.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && declaresModule(b, mainModule) {
			return dir, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod of module %s at or above %s", mainModule, wd)
		}
	}
}

func declaresModule(gomod []byte, module string) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == module {
			return true
		}
	}
	return false
}
