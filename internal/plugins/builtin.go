package plugins

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// This file resolves built-in plugins: url: builtin://<name> names one of
// the plugins under plugins/<name> in this repository, built by
// `make plugins` to build/plugins/<name>.wasm and shipped next to the
// sluice binary in release archives.

// PluginDirEnv names the directory searched first for built-in plugins.
const PluginDirEnv = "SLUICE_PLUGIN_DIR"

// BuiltinPath returns the file of the built-in plugin name (<name>.wasm),
// searching in order:
//
//  1. $SLUICE_PLUGIN_DIR, when set;
//  2. plugins/ next to the sluice binary (release archives, containers);
//  3. build/plugins/ under the working directory (a source checkout after
//     `make plugins`).
//
// The first existing regular file wins. The error lists every place it
// looked and says how to get the file.
func BuiltinPath(name string) (string, error) {
	if !validBuiltinName(name) {
		return "", fmt.Errorf("builtin://%s: not a plugin name (lower-case letters, digits, '-' and '_', e.g. builtin://ai-prompt-decorator)", name)
	}
	file := name + ".wasm"
	var dirs []string
	if d := os.Getenv(PluginDirEnv); d != "" {
		dirs = append(dirs, d)
	}
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "plugins"))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, filepath.Join(wd, "build", "plugins"))
	}
	var looked []string
	for _, d := range dirs {
		p := filepath.Join(d, file)
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		reason := "not found"
		switch {
		case err == nil:
			reason = "not a regular file"
		case !errors.Is(err, fs.ErrNotExist):
			reason = err.Error()
		}
		looked = append(looked, fmt.Sprintf("%s (%s)", p, reason))
	}
	return "", fmt.Errorf("builtin://%s: %s is in none of: %s; build the built-in plugins with `make plugins`, or point $%s at a directory holding %s",
		name, file, strings.Join(looked, ", "), PluginDirEnv, file)
}

func validBuiltinName(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '-' {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}
