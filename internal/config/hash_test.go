package config

import "testing"

func TestHash(t *testing.T) {
	base := mustLoad(t, "testdata/hash/base.yaml").Hash
	if len(base) != 64 {
		t.Fatalf("hash %q is not hex SHA-256", base)
	}
	tests := []struct {
		name  string
		paths []string
		equal bool
	}{
		{"same file again", []string{"testdata/hash/base.yaml"}, true},
		{"reformatted, commented, defaults written out", []string{"testdata/hash/reformatted.yaml"}, true},
		{"split over two files", []string{"testdata/hash/split"}, true},
		{"a plugin setting changed", []string{"testdata/hash/changed.yaml"}, false},
		{"endpoints reordered", []string{"testdata/hash/reordered.yaml"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLoad(t, tt.paths...).Hash
			if (got == base) != tt.equal {
				t.Errorf("hash %s vs base %s: equal = %v, want %v", got, base, got == base, tt.equal)
			}
		})
	}
}
