package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const clusterHead = "apiVersion: sluice.dev/v1alpha1\nkind: Cluster\nmetadata: {name: backend}\n"
const pluginHead = "apiVersion: extensions.higress.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: p}\n"

func TestMergeKeys(t *testing.T) {
	in := `apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: a}
spec: &base
  endpoints: [{address: "127.0.0.1:8000"}]
  connectTimeout: 1s
---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: b}
spec:
  <<: *base
  connectTimeout: 2s
`
	s, err := Parse("merge.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	b := s.Clusters[1].Spec
	eq(t, "merged endpoints", b.Endpoints[0].Address, "127.0.0.1:8000")
	eq(t, "own key wins", b.ConnectTimeout.Duration, 2*time.Second)
}

func TestFreeFormConfigValues(t *testing.T) {
	in := pluginHead + `spec:
  url: oci://example.com/p:1
  defaultConfig:
    int: 42
    big: 18446744073709551615
    float: 1.5
    bool: true
    null: ~
    str: "42"
    when: 2024-01-02
    200: ok
    list: [1, a, {b: c}]
`
	s, err := Parse("p.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "defaultConfig", s.WasmPlugins[0].Spec.DefaultConfig, map[string]any{
		"int": int64(42), "big": uint64(18446744073709551615), "float": 1.5, "bool": true, "null": nil,
		"str": "42", "when": "2024-01-02", "200": "ok", "list": []any{int64(1), "a", map[string]any{"b": "c"}},
	})
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"alias cycle", pluginHead + "spec:\n  url: oci://example.com/p:1\n  defaultConfig: &a\n    x: *a\n",
			"p.yaml:7: WasmPlugin/p: spec.defaultConfig.x: alias refers to a value that contains it"},
		{"merge cycle", clusterHead + "spec: &s\n  <<: *s\n",
			"p.yaml:5: Cluster/backend: spec: alias refers to a value that contains it"},
		{"custom tag in plugin config", pluginHead + "spec:\n  url: oci://example.com/p:1\n  defaultConfig: {a: !secret x}\n",
			"p.yaml:6: WasmPlugin/p: spec.defaultConfig.a: YAML tag !secret is not supported (remove the tag)"},
		{"non-scalar key", pluginHead + "spec:\n  url: oci://example.com/p:1\n  defaultConfig: {[a]: x}\n",
			"p.yaml:6: WasmPlugin/p: spec.defaultConfig: mapping keys must be strings, got a list"},
		{"int overflow", clusterHead + "spec:\n  port: 99999999999999999999\n",
			"p.yaml:5: Cluster/backend: spec.port: must be a whole number"},
		{"infinite ratio", "apiVersion: sluice.dev/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  tracing: {sampleRatio: .inf}\n",
			"p.yaml:5: Gateway/g: spec.tracing.sampleRatio: must be a finite number"},
		{"quoted key path", pluginHead + "spec:\n  url: oci://example.com/p:1\n  vmConfig: {env: [{name: A, \"value from\": x}]}\n",
			`p.yaml:6: WasmPlugin/p: spec.vmConfig.env[0]["value from"]: unknown field "value from"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

// Exponential expansion through aliases or merge keys is cut off instead
// of eating memory and time.
func TestAliasBomb(t *testing.T) {
	bomb := func(level0, levelN func(prev string) string) string {
		var b strings.Builder
		b.WriteString(pluginHead + "spec:\n  url: oci://example.com/p:1\n  defaultConfig:\n")
		b.WriteString("    l0: &l0 " + level0("") + "\n")
		for i := 1; i <= 8; i++ {
			fmt.Fprintf(&b, "    l%d: &l%d %s\n", i, i, levelN(fmt.Sprintf("*l%d", i-1)))
		}
		return b.String()
	}
	ten := func(item string) string { return strings.TrimSuffix(strings.Repeat(item+", ", 10), ", ") }
	tests := []struct {
		name, in string
	}{
		{"aliases", bomb(
			func(string) string { return "[" + ten("x") + "]" },
			func(prev string) string { return "[" + ten(prev) + "]" })},
		{"merge keys", bomb(
			func(string) string { return "{a: 1, b: 2, c: 3}" },
			func(prev string) string { return "{<<: [" + ten(prev) + "]}" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("bomb.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), "document is too large") {
				t.Fatalf("err = %v", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
	}{
		{"first line", "a: b: c\n", 1},
		{"bad indentation, reported where it happens", "a:\n  b: 1\n  c: 2\n d: 3\n", 4},
		{"unclosed flow list", "a: 1\nb: [1,\n", 2},
		{"second document", "~\n---\nb: \"x\n", 3},
		{"control character", "a: 1\nb: \x01\n", 2},
		{"invalid UTF-8", "a: 1\nb: 2\nc: \xff\n", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.in))
			var list ErrorList
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("err = %v", err)
			}
			if list[0].Line != tt.line || !strings.HasPrefix(list[0].Message, "invalid YAML: ") {
				t.Errorf("got %v, want line %d", list[0], tt.line)
			}
		})
	}
}

// A misspelt field is reported once: no "is required" follows for the
// field it was meant to be.
func TestDecodeErrorsShadowValidation(t *testing.T) {
	in := clusterHead + "spec:\n  endpoints:\n    - adress: 127.0.0.1:80\n  port: x\n"
	_, err := Parse("p.yaml", []byte(in))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatal(err)
	}
	eq(t, "errors", list.Error(), `p.yaml:6: Cluster/backend: spec.endpoints[0].adress: unknown field "adress" (did you mean "address"?)`+"\n"+
		`p.yaml:7: Cluster/backend: spec.port: must be a whole number, got "x"`)
}

func TestPaths(t *testing.T) {
	tests := []struct {
		path, key, joined, parent string
	}{
		{"", "spec", "spec", ""},
		{"spec", "url", "spec.url", "spec"},
		{"spec.headers", "x-api-key", "spec.headers.x-api-key", "spec.headers"},
		{"spec.headers", "a b", `spec.headers["a b"]`, "spec.headers"},
		{"spec.defaultConfig", "a.b", `spec.defaultConfig["a.b"]`, "spec.defaultConfig"},
	}
	for _, tt := range tests {
		got := joinKey(tt.path, tt.key)
		eq(t, "joinKey", got, tt.joined)
		eq(t, "parentPath("+got+")", parentPath(got), tt.parent)
	}
	eq(t, "index", joinIndex("spec.endpoints", 2), "spec.endpoints[2]")
	eq(t, "parent of index", parentPath("spec.endpoints[2]"), "spec.endpoints")
	eq(t, "parent of odd", parentPath("]"), "")
}

func TestLineOfFallsBackToParent(t *testing.T) {
	d := &document{lines: map[string]int{"": 1, "spec": 4, "spec.endpoints": 5, "spec.endpoints[1]": 7}}
	tests := map[string]int{
		"spec.endpoints[1].address": 7,
		"spec.endpoints[1]":         7,
		"spec.url":                  4,
		"metadata.name":             1,
	}
	for path, want := range tests {
		eq(t, "lineOf("+path+")", d.lineOf(path), want)
	}
}
