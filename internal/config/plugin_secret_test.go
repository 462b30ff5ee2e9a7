package config

import (
	"path/filepath"
	"testing"
)

// imagePullSecret is a Docker config file path, resolved against the
// directory of the file that declares the plugin (like file:// URLs).
func TestImagePullSecretResolvedRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	for _, tc := range []struct{ secret, want string }{
		{"registry/config.json", filepath.Join(dir, "registry", "config.json")},
		{"/etc/sluice/docker.json", "/etc/sluice/docker.json"},
		{"", ""},
	} {
		doc := `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: p}
spec:
  url: oci://ghcr.io/org/p:1.0.0
`
		if tc.secret != "" {
			doc += "  imagePullSecret: " + tc.secret + "\n"
		}
		snap, err := Parse(file, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.WasmPlugins[0].Spec.ImagePullSecret; got != tc.want {
			t.Errorf("imagePullSecret %q became %q, want %q", tc.secret, got, tc.want)
		}
	}
}
