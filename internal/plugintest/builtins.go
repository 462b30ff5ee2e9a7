package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugins"
)

var (
	builtinsOnce sync.Once
	builtinsDir  string
	builtinsErr  error
	builtinsMu   sync.Mutex
	builtinsDone = map[string]error{}
)

// Builtins builds the named plugins of plugins/<name> (from anywhere in the
// module) into one directory with the command `make plugins` uses, each
// at most once per process, points $SLUICE_PLUGIN_DIR at it for the test
// (so builtin://<name> URLs resolve) and returns it. RunMain removes it.
func Builtins(t testing.TB, names ...string) string {
	t.Helper()
	builtinsOnce.Do(func() {
		builtinsDir, builtinsErr = os.MkdirTemp("", "sluice-builtins-")
		if builtinsErr == nil {
			buildMu.Lock()
			buildDirs["\x00builtins"] = &buildResult{dir: builtinsDir}
			buildMu.Unlock()
		}
	})
	if builtinsErr != nil {
		t.Fatal(builtinsErr)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	builtinsMu.Lock()
	defer builtinsMu.Unlock()
	for _, name := range names {
		err, done := builtinsDone[name]
		if !done {
			err = buildPlugin(filepath.Join(root, "plugins", name), filepath.Join(builtinsDir, name+".wasm"))
			builtinsDone[name] = err
		}
		if err != nil {
			t.Fatalf("building plugin %s: %v", name, err)
		}
	}
	t.Setenv(plugins.PluginDirEnv, builtinsDir)
	return builtinsDir
}

// buildPlugin builds the plugin package in dir to out.
func buildPlugin(dir, out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s (in %s): %v\n%s", strings.Join(cmd.Args, " "), dir, err, b)
	}
	fmt.Fprintf(os.Stderr, "built %s in %s\n", out, time.Since(start).Round(10*time.Millisecond))
	return nil
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
