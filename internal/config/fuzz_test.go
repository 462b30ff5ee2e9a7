package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic or hang;
// a failure must be an ErrorList of complete messages, and a success a
// snapshot that encodes to JSON and hashes the same twice.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "testdata/*/*.yml", "testdata/*/*/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("testdata/fuzz.yaml", data)
		if err != nil {
			if s != nil {
				t.Fatal("snapshot returned with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e == nil || e.Message == "" || e.Error() == "" {
					t.Fatalf("incomplete error %#v", e)
				}
			}
			return
		}
		if s.Gateway == nil || len(s.Hash) != 64 {
			t.Fatalf("incomplete snapshot %+v", s)
		}
		if _, err := json.Marshal(s.Redacted()); err != nil {
			t.Fatalf("snapshot does not encode: %v", err)
		}
		again, err := Parse("testdata/fuzz.yaml", data)
		if err != nil || again.Hash != s.Hash {
			t.Fatalf("second parse: %v, hash %v vs %v", err, again, s.Hash)
		}
	})
}
