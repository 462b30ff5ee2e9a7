package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath identifies the repository root by its go.mod.
const modulePath = "github.com/sluicegw/sluice"

// FindRepoRoot walks up from dir to the directory whose go.mod declares the
// Sluice module.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && moduleLine(b) == "module "+modulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of module %s in %s or above it (run from the repository, or pass -repo)", modulePath, dir)
		}
	}
}

// moduleLine returns the module directive of a go.mod file.
func moduleLine(gomod []byte) string {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "module ") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}

// goTool returns the go command: the one on PATH, else the one under
// $GOROOT (set by go run for the program it runs).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// goBuild runs "go build -o out pkg" in root and returns out's absolute
// path. The compiler's output is part of the error.
func goBuild(root, out, pkg string) (string, error) {
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	cmd := exec.Command(goTool(), "build", "-o", out, pkg)
	cmd.Dir = root
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(output.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", &BuildError{Package: pkg, Output: msg}
	}
	return out, nil
}

// BuildError is a target binary that did not compile.
type BuildError struct {
	Package, Output string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("go build %s failed:\n%s", e.Package, e.Output)
}
