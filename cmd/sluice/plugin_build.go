package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/internal/wasmhost"
)

// This file is `sluice plugin build`: it builds a Go plugin exactly as
// `make plugins` builds the built-in ones, by running the go command.

// pluginBuildEnv is the environment of a plugin build (Go ≥ 1.24 reactor
// modules for the Proxy-Wasm host).
var pluginBuildEnv = []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"}

// pluginBuildArgs are the go build arguments before "-o OUT PKG".
var pluginBuildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w"}

func newPluginBuildCommand() *cobra.Command {
	var out string
	var check bool
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a Go plugin (a main package, e.g. on pdk/) to a .wasm module",
		Long: `Build the Go plugin in DIR (a main package) to a Proxy-Wasm module, as "make plugins"
builds the built-in ones:

  GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o OUT .

DIR must be inside a Go module that requires the plugin's SDK; the go command on PATH
(Go 1.24 or newer) does the build and reuses Go's build cache. The module loads in
Sluice (url: file://OUT) and in Higress.`,
		Example: `  sluice plugin build ./my-plugin                 # writes ./my-plugin.wasm
  sluice plugin build ./my-plugin -o dist/my.wasm --check`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return buildPlugin(cmd.Context(), cmd.ErrOrStderr(), args[0], out, check)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file (default: <DIR's name>.wasm in the working directory)")
	cmd.Flags().BoolVar(&check, "check", false, "also compile the result with the host's checks (as `sluice plugin inspect`; takes seconds)")
	return cmd
}

func buildPlugin(ctx context.Context, log io.Writer, dir, out string, check bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		return &exitError{2, fmt.Errorf("plugin directory: %w", err)}
	case !st.IsDir():
		return &exitError{2, fmt.Errorf("%s is not a directory: pass the directory of the plugin's main package", dir)}
	}
	if out == "" {
		out = filepath.Base(abs) + ".wasm"
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return &exitError{1, errors.New("the go command is not on PATH: plugins are built with Go 1.24 or newer (https://go.dev/dl/)")}
	}
	if err := checkGoVersion(ctx, goBin, abs); err != nil {
		return &exitError{1, err}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}

	args := append(append([]string{}, pluginBuildArgs...), "-o", out, ".")
	c := exec.CommandContext(ctx, goBin, args...)
	c.Dir = abs
	c.Env = append(os.Environ(), pluginBuildEnv...)
	c.Stdout, c.Stderr = log, log
	fmt.Fprintf(log, "building %s → %s\n  (in %s) %s go %s\n", dir, out, abs, strings.Join(pluginBuildEnv, " "), quoteArgs(args))
	start := time.Now()
	if err := c.Run(); err != nil {
		return &exitError{1, fmt.Errorf("go build failed (%v); the go command's messages are above", err)}
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return &exitError{1, fmt.Errorf("go build wrote no module: %w", err)}
	}
	sum := sha256.Sum256(wasm)
	fmt.Fprintf(log, "built %s: %d bytes, sha256 %s, in %s\n", out, len(wasm), hex.EncodeToString(sum[:]), time.Since(start).Round(time.Millisecond))
	if check {
		fmt.Fprintln(log, "checking the module (compiling it as the gateway would)…")
		ins, err := wasmhost.Inspect(ctx, wasm)
		if err != nil {
			return &exitError{1, fmt.Errorf("%s does not compile: %w", out, err)}
		}
		if len(ins.Problems) > 0 {
			return &exitError{1, fmt.Errorf("the gateway would refuse %s: %s", out, strings.Join(ins.Problems, "; "))}
		}
		fmt.Fprintf(log, "loadable: ABI %s, %d imports, compiled in %s\n", ins.ABI, len(ins.Imports), ins.CompileTime.Round(time.Millisecond))
	}
	fmt.Fprintf(log, "use it with url: file://%s\n", filepath.ToSlash(out))
	return nil
}

// checkGoVersion refuses toolchains older than Go 1.24, which cannot build
// reactor modules that export functions (go:wasmexport). The version is
// asked in dir, so a go.mod toolchain line is honoured.
func checkGoVersion(ctx context.Context, goBin, dir string) error {
	c := exec.CommandContext(ctx, goBin, "env", "GOVERSION")
	c.Dir = dir
	b, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go env GOVERSION: %v\n%s", err, b)
	}
	v := strings.TrimSpace(string(b))
	major, minor, ok := parseGoVersion(v)
	if ok && (major < 1 || major == 1 && minor < 24) {
		return fmt.Errorf("plugins need Go 1.24 or newer (-buildmode=c-shared for wasip1 with go:wasmexport); %s is %s", goBin, v)
	}
	return nil
}

// parseGoVersion reads "go1.26.8" (or "go1.24rc1", "go1.25.0 X:…"); ok is
// false for devel builds.
func parseGoVersion(v string) (major, minor int, ok bool) {
	v, _, _ = strings.Cut(v, " ")
	rest, found := strings.CutPrefix(v, "go")
	if !found {
		return 0, 0, false
	}
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, false
	}
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	minor, err = strconv.Atoi(digits)
	if err != nil {
		return 0, 0, false
	}
	return major, minor, true
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
