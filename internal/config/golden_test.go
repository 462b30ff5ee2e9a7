package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

// caseNames lists the <case>.yaml files of a testdata directory.
func caseNames(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in %s: %v", dir, err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".yaml")
	}
	return names
}

// TestErrorGolden loads each testdata/errors/<case>.yaml and compares the
// whole error output with <case>.golden.
func TestErrorGolden(t *testing.T) {
	names := caseNames(t, "testdata/errors")
	for _, required := range []string{
		"malformed_yaml", "unknown_field", "duplicate_names", "missing_cluster", "invalid_regex",
		"bad_port", "missing_tls_files", "bad_duration", "wrong_kind", "many_errors", "wasmplugin_enums",
	} {
		if !slices.Contains(names, required) {
			t.Errorf("error case testdata/errors/%s.yaml is missing", required)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata/errors", name+".yaml")
			snap, err := Load(file)
			if err == nil {
				t.Fatalf("loaded without error (warnings: %v)", snap.Warnings)
			}
			if snap != nil {
				t.Errorf("got a Snapshot together with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			for _, e := range list {
				if e.File != file || e.Line < 1 || e.Message == "" {
					t.Errorf("incomplete error %#v", e)
				}
			}
			checkGolden(t, filepath.Join("testdata/errors", name+".golden"), err.Error()+"\n")
		})
	}
}

// TestWarningGolden loads each testdata/warnings/<case>.yaml, which must
// load, and compares its warnings with <case>.golden.
func TestWarningGolden(t *testing.T) {
	for _, name := range caseNames(t, "testdata/warnings") {
		t.Run(name, func(t *testing.T) {
			snap, err := Load(filepath.Join("testdata/warnings", name+".yaml"))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(snap.Warnings) == 0 {
				t.Fatal("no warnings")
			}
			checkGolden(t, filepath.Join("testdata/warnings", name+".golden"), ErrorList(snap.Warnings).Error()+"\n")
		})
	}
}
