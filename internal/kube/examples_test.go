package kube

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluicegw/sluice/internal/config"
)

// TestKubernetesExamples checks examples/kubernetes: every file is YAML
// of Kubernetes objects, the ConfigMap and the WasmPlugins make a valid
// configuration the way the watcher builds it, and the Deployment agrees
// with that configuration on ports and with the RBAC rules on names.
func TestKubernetesExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	byKind := map[string][]map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil || doc["metadata"] == nil {
				t.Errorf("%s: a document without apiVersion, kind or metadata", f)
			}
			byKind[kind] = append(byKind[kind], doc)
		}
	}

	cms := byKind["ConfigMap"]
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(cms))
	}
	cm := &unstructured.Unstructured{Object: cms[0]}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var srcs []config.Source
	for _, k := range keys {
		srcs = append(srcs, config.Source{Name: configMapSourceName(cm.GetNamespace(), cm.GetName(), k), Data: []byte(data[k])})
	}
	if len(byKind["WasmPlugin"]) == 0 {
		t.Error("no example WasmPlugin")
	}
	for _, p := range byKind["WasmPlugin"] {
		u := &unstructured.Unstructured{Object: p}
		doc, err := renderObject(u)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, config.Source{Name: pluginSourceName(u.GetNamespace(), u.GetName()), Data: doc})
	}
	snap, err := config.ParseSources(srcs)
	if err != nil {
		t.Fatalf("the example configuration is invalid:\n%v", err)
	}
	for _, w := range snap.Warnings {
		t.Logf("warning: %v", w)
	}

	// The Deployment runs --kubernetes on that ConfigMap, with the ports
	// the Gateway listens on and the readiness probe on the admin port.
	deps := byKind["Deployment"]
	if len(deps) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deps))
	}
	containers, _ := field(deps[0], "spec", "template", "spec", "containers").([]any)
	c := containers[0].(map[string]any)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"run", "--kubernetes", "--configmap=$(POD_NAMESPACE)/" + cm.GetName()} {
		if !slices.Contains(args, want) {
			t.Errorf("container args %v lack %q", args, want)
		}
	}
	ports := map[string]string{}
	pl, _ := field(c, "ports").([]any)
	for _, p := range pl {
		p := p.(map[string]any)
		ports[p["name"].(string)] = ":" + strings.TrimSpace(yamlScalar(p["containerPort"]))
	}
	if want := ports["http"]; !strings.HasSuffix(snap.Gateway.Spec.Listeners[0].Address, want) || want == ":" {
		t.Errorf("listener %s does not match the http containerPort%s", snap.Gateway.Spec.Listeners[0].Address, want)
	}
	if want := ports["admin"]; !strings.HasSuffix(snap.Gateway.Spec.Admin.Address, want) || want == ":" {
		t.Errorf("admin %s does not match the admin containerPort%s", snap.Gateway.Spec.Admin.Address, want)
	}
	path, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "path")
	port, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "port")
	if path != "/readyz" || port != "admin" {
		t.Errorf("readiness probe on %s %s, want /readyz on admin", port, path)
	}

	// The Role grants what the watcher does.
	roles := byKind["Role"]
	if len(roles) != 1 {
		t.Fatalf("%d Roles, want 1", len(roles))
	}
	rules, _ := field(roles[0], "rules").([]any)
	granted := map[string]bool{}
	for _, r := range rules {
		r := r.(map[string]any)
		res, _, _ := unstructured.NestedStringSlice(r, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(r, "verbs")
		for _, rs := range res {
			for _, v := range verbs {
				granted[rs+" "+v] = true
			}
		}
	}
	for _, want := range []string{"wasmplugins list", "wasmplugins watch", "wasmplugins/status update",
		"configmaps list", "configmaps watch", "events create"} {
		if !granted[want] {
			t.Errorf("the Role does not grant %q", want)
		}
	}
	crds := byKind["CustomResourceDefinition"]
	if len(crds) != 1 || (&unstructured.Unstructured{Object: crds[0]}).GetName() != WasmPluginResource.GroupResource().String() {
		t.Errorf("want one CRD named %s", WasmPluginResource.GroupResource())
	}
}

// field reads a value without the deep copy of the unstructured helpers,
// which reject YAML's int.
func field(obj map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	return v
}

func yamlScalar(v any) string {
	out, _ := yaml.Marshal(v)
	return string(out)
}
