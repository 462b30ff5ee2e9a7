package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const sourcesCluster = `apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: backend}
spec:
  endpoints: [{address: "127.0.0.1:8000"}]
`

const sourcesRoute = `apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: chat}
spec: {cluster: backend}
`

const sourcesPlugin = `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: %s, namespace: %s}
spec:
  url: oci://ghcr.io/example/plugin:1.0.0
`

func TestParseSources(t *testing.T) {
	tests := []struct {
		name string
		srcs []Source
		// want is what the snapshot holds ("" when an error is expected);
		// wantErr lists substrings of the error, each on its own line.
		want    string
		wantErr []string
	}{
		{
			name: "resources from several sources, in order",
			srcs: []Source{
				{"configmap/ns/gw:a.yaml", []byte(sourcesCluster)},
				{"configmap/ns/gw:b.yaml", []byte(sourcesRoute)},
				{"wasmplugin/ns/b", []byte(fmt.Sprintf(sourcesPlugin, "b", "ns"))},
				{"wasmplugin/ns/a", []byte(fmt.Sprintf(sourcesPlugin, "a", "ns"))},
			},
			want: "files=configmap/ns/gw:a.yaml,configmap/ns/gw:b.yaml,wasmplugin/ns/b,wasmplugin/ns/a clusters=backend routes=chat plugins=ns.b,ns.a",
		},
		{
			name: "no sources: the defaults",
			want: "files= clusters= routes= plugins=",
		},
		{
			name: "errors name the source and the line",
			srcs: []Source{
				{"configmap/ns/gw:routes.yaml", []byte(sourcesRoute)},
				{"wasmplugin/ns/bad", []byte("apiVersion: extensions.higress.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: bad}\nspec:\n  url: oci://x/y:1\n  colour: red\n")},
			},
			wantErr: []string{
				`configmap/ns/gw:routes.yaml:4: Route/chat: spec.cluster: cluster "backend" does not exist`,
				`wasmplugin/ns/bad:6: WasmPlugin/bad: spec.colour: unknown field`,
			},
		},
		{
			name: "a name given twice",
			srcs: []Source{
				{"configmap/ns/gw:a.yaml", []byte(sourcesCluster)},
				{"configmap/ns/gw:a.yaml", []byte(sourcesRoute)},
			},
			wantErr: []string{`configmap/ns/gw:a.yaml: source "configmap/ns/gw:a.yaml" is given more than once`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := ParseSources(tt.srcs)
			if len(tt.wantErr) > 0 {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error = %v, want an ErrorList", err)
				}
				if snap != nil {
					t.Error("snapshot is not nil on error")
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(tt.wantErr) {
					t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.wantErr), err)
				}
				for i, w := range tt.wantErr {
					if !strings.HasPrefix(lines[i], w) {
						t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(snap); got != tt.want {
				t.Errorf("snapshot = %s\nwant       %s", got, tt.want)
			}
		})
	}
}

// TestParseSourcesMatchesParse checks that ParseSources goes through the
// same path as Parse: one source gives the same snapshot and hash.
func TestParseSourcesMatchesParse(t *testing.T) {
	data := []byte(sourcesCluster + "---\n" + sourcesRoute)
	a, err := Parse("x.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSources([]Source{{"x.yaml", data}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Errorf("hash %s != %s", a.Hash, b.Hash)
	}
	eq(t, "files", b.Files, []string{"x.yaml"})
}

func summary(s *Snapshot) string {
	var clusters, routes, plugins []string
	for _, c := range s.Clusters {
		clusters = append(clusters, c.Metadata.Name)
	}
	for _, r := range s.Routes {
		routes = append(routes, RouteName(r))
	}
	for _, p := range s.WasmPlugins {
		plugins = append(plugins, PluginName(p))
	}
	return "files=" + strings.Join(s.Files, ",") + " clusters=" + strings.Join(clusters, ",") +
		" routes=" + strings.Join(routes, ",") + " plugins=" + strings.Join(plugins, ",")
}
