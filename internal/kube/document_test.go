package kube

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluicegw/sluice/internal/config"
)

// serverObject is a WasmPlugin as the API server returns it.
func serverObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "extensions.higress.io/v1alpha1",
		"kind":       "WasmPlugin",
		"metadata": map[string]any{
			"name":              "ai-proxy",
			"namespace":         "higress-system",
			"uid":               "6c3c8a7e-1f0e-4a4e-9a57-2f5b1e0c9d11",
			"resourceVersion":   "48213",
			"generation":        int64(7),
			"creationTimestamp": "2026-11-27T10:00:00Z",
			"labels":            map[string]any{"team": "ai"},
			"annotations": map[string]any{
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"extensions.higress.io/v1alpha1"}`,
				"owner": "ai-team",
			},
			"managedFields": []any{map[string]any{"manager": "kubectl", "operation": "Apply"}},
			"finalizers":    []any{"example.com/keep"},
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u",
			}},
		},
		"spec": map[string]any{
			"url":           "oci://higress-registry.cn-hangzhou.cr.aliyuncs.com/plugins/ai-proxy:1.0.0",
			"priority":      int64(100),
			"phase":         "UNSPECIFIED_PHASE",
			"defaultConfig": map[string]any{"provider": map[string]any{"type": "openai", "timeout": int64(1200), "ratio": 0.5, "apiTokens": []any{"sk-1"}}},
			"matchRules":    []any{map[string]any{"ingress": []any{"team-a/chat"}, "config": map[string]any{"version": "1.0"}}},
		},
		"status": map[string]any{"phase": "Ready", "message": "applied", "observedGeneration": int64(6)},
	}}
}

func TestRenderObject(t *testing.T) {
	tests := []struct {
		name string
		edit func(u *unstructured.Unstructured)
		want string
	}{
		{
			name: "server fields, status and kubectl's annotation stripped",
			want: `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata:
    name: ai-proxy
    namespace: higress-system
    labels:
        team: ai
    annotations:
        owner: ai-team
spec:
    defaultConfig:
        provider:
            apiTokens:
                - sk-1
            ratio: 0.5
            timeout: 1200
            type: openai
    matchRules:
        - config:
            version: "1.0"
          ingress:
            - team-a/chat
    phase: UNSPECIFIED_PHASE
    priority: 100
    url: oci://higress-registry.cn-hangzhou.cr.aliyuncs.com/plugins/ai-proxy:1.0.0
`,
		},
		{
			name: "no labels, only kubectl's annotation",
			edit: func(u *unstructured.Unstructured) {
				u.SetLabels(nil)
				u.SetAnnotations(map[string]string{lastAppliedAnnotation: "{}"})
				u.Object["spec"] = map[string]any{"url": "oci://r/p:1"}
			},
			want: `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata:
    name: ai-proxy
    namespace: higress-system
spec:
    url: oci://r/p:1
`,
		},
		{
			name: "unknown top-level fields dropped, unknown spec fields kept",
			edit: func(u *unstructured.Unstructured) {
				u.Object["extra"] = "dropped"
				u.Object["spec"] = map[string]any{"url": "oci://r/p:1", "colour": "red"}
			},
			want: `apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata:
    name: ai-proxy
    namespace: higress-system
    labels:
        team: ai
    annotations:
        owner: ai-team
spec:
    colour: red
    url: oci://r/p:1
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := serverObject()
			if tt.edit != nil {
				tt.edit(u)
			}
			got, err := renderObject(u)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("rendered:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestRenderedObjectDecodes checks that the strict decoder accepts what a
// server returns once rendered, and keeps what matters.
func TestRenderedObjectDecodes(t *testing.T) {
	data, err := renderObject(serverObject())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := config.ParseSources([]config.Source{{Name: pluginSourceName("higress-system", "ai-proxy"), Data: data}})
	if err != nil {
		t.Fatalf("rendered object rejected:\n%v\n%s", err, data)
	}
	p := snap.WasmPlugins[0]
	if config.PluginName(p) != "higress-system.ai-proxy" || *p.Spec.Priority != 100 || p.Metadata.Annotations["owner"] != "ai-team" {
		t.Errorf("decoded %+v", p)
	}
	if _, ok := p.Metadata.Annotations[lastAppliedAnnotation]; ok {
		t.Error("kubectl's annotation survived")
	}
	if got := p.Spec.MatchRules[0].Config["version"]; got != "1.0" {
		t.Errorf("matchRules[0].config.version = %#v, want the string \"1.0\"", got)
	}
}
