package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/sluicegw/sluice/internal/config"
)

const (
	testNS       = "gw"
	testCM       = "sluice-config"
	testDebounce = 200 * time.Millisecond
	// waitLimit bounds every wait; reaching it fails the test.
	waitLimit = 20 * time.Second
)

// harness runs a Watcher against fake API clients. Time is a fake clock,
// so the debounce ends only when the test steps it.
type harness struct {
	t     *testing.T
	dyn   *dynamicfake.FakeDynamicClient
	cs    *k8sfake.Clientset
	clock *clocktesting.FakeClock
	w     *Watcher
	// changes receives one key per change the watcher noted: "ns/name@rv",
	// or "ns/name@deleted".
	changes chan string
	// armed receives a value each time the debounce timer is started.
	armed chan struct{}
	// applies receives every Snapshot passed to Apply.
	applies chan *config.Snapshot

	mu     sync.Mutex
	result func(*config.Snapshot) (ApplyResult, error)
}

func newHarness(t *testing.T, cm *corev1.ConfigMap, plugins ...*unstructured.Unstructured) *harness {
	t.Helper()
	objs := make([]runtime.Object, len(plugins))
	for i, p := range plugins {
		objs[i] = p
	}
	h := &harness{
		t: t,
		dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{WasmPluginResource: "WasmPluginList"}, objs...),
		clock:   clocktesting.NewFakeClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)),
		changes: make(chan string, 1000),
		armed:   make(chan struct{}, 1000),
		applies: make(chan *config.Snapshot, 100),
	}
	h.emulateStatusSubresource()
	if cm != nil {
		h.cs = k8sfake.NewClientset(cm)
	} else {
		h.cs = k8sfake.NewClientset()
	}
	w, err := New(Options{
		Dynamic:   h.dyn,
		Clientset: h.cs,
		ConfigMap: types.NamespacedName{Namespace: testNS, Name: testCM},
		Apply:     h.apply,
		Logger:    slog.New(slog.NewTextHandler(testLog{t}, nil)),
		Debounce:  testDebounce,
		Instance:  "sluice-0",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.clock = h.clock
	w.onEvent = func(op string, obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		o, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		rv := o.GetResourceVersion()
		if op == "delete" {
			rv = "deleted"
		}
		h.changes <- o.GetNamespace() + "/" + o.GetName() + "@" + rv
	}
	w.onArm = func() { h.armed <- struct{}{} }
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

// emulateStatusSubresource makes the fake behave like an API server for a
// resource with a status subresource: an update of the object keeps the
// stored status, an update of status keeps the stored object and fails
// with a conflict when the object changed since it was read.
func (h *harness) emulateStatusSubresource() {
	var (
		mu sync.Mutex
		rv int
	)
	tracker := h.dyn.Tracker()
	h.dyn.PrependReactor("update", WasmPluginResource.Resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		ua := a.(k8stesting.UpdateAction)
		in := ua.GetObject().(*unstructured.Unstructured)
		stored, err := tracker.Get(WasmPluginResource, ua.GetNamespace(), in.GetName())
		if err != nil {
			return true, nil, err
		}
		next := stored.(*unstructured.Unstructured).DeepCopy()
		switch ua.GetSubresource() {
		case "status":
			if in.GetResourceVersion() != next.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(WasmPluginResource.GroupResource(), in.GetName(),
					errors.New("the object has been modified"))
			}
			next.Object["status"] = in.Object["status"]
		case "":
			status := next.Object["status"]
			next = in.DeepCopy()
			next.Object["status"] = status
		default:
			return false, nil, nil
		}
		rv++
		next.SetResourceVersion(fmt.Sprintf("emulated-%d", rv))
		if err := tracker.Update(WasmPluginResource, next, ua.GetNamespace()); err != nil {
			return true, nil, err
		}
		out, err := tracker.Get(WasmPluginResource, ua.GetNamespace(), in.GetName())
		return true, out, err
	})
}

// testLog shows the watcher's log with the test's output.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (h *harness) apply(_ context.Context, snap *config.Snapshot) (ApplyResult, error) {
	h.mu.Lock()
	f := h.result
	h.mu.Unlock()
	h.applies <- snap
	if f == nil {
		return ApplyResult{}, nil
	}
	return f(snap)
}

func (h *harness) setResult(f func(*config.Snapshot) (ApplyResult, error)) {
	h.mu.Lock()
	h.result = f
	h.mu.Unlock()
}

// initialApply waits for the Snapshot built right after the caches
// synced; no debounce applies to it.
func (h *harness) initialApply() *config.Snapshot {
	h.t.Helper()
	select {
	case s := <-h.applies:
		return s
	case <-time.After(waitLimit):
		h.t.Fatal("no initial Apply")
		return nil
	}
}

// waitChanges waits until the watcher has noted each of the changes
// (keys as returned by the pluginClient methods).
func (h *harness) waitChanges(keys ...string) {
	h.t.Helper()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for len(want) > 0 {
		select {
		case k := <-h.changes:
			delete(want, k)
		case <-time.After(waitLimit):
			h.t.Fatalf("changes not noted: %v", want)
		}
	}
}

// nextApply advances the fake clock past the debounce until Apply is
// called, and returns the Snapshot.
func (h *harness) nextApply() *config.Snapshot {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		select {
		case s := <-h.applies:
			return s
		case <-time.After(5 * time.Millisecond):
			h.clock.Step(testDebounce)
		}
	}
	h.t.Fatal("Apply was not called")
	return nil
}

// waitFor advances the fake clock until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
		h.clock.Step(testDebounce)
	}
}

// noApply fails if Apply was called and its Snapshot not yet taken.
func (h *harness) noApply() {
	h.t.Helper()
	select {
	case s := <-h.applies:
		h.t.Fatalf("unexpected Apply of %v", summarize(s))
	default:
	}
}

func (h *harness) plugins() *pluginClient {
	return &pluginClient{h}
}

type pluginClient struct{ h *harness }

func (c *pluginClient) create(u *unstructured.Unstructured) string {
	c.h.t.Helper()
	out, err := c.h.dyn.Resource(WasmPluginResource).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{})
	if err != nil {
		c.h.t.Fatal(err)
	}
	return out.GetNamespace() + "/" + out.GetName() + "@" + out.GetResourceVersion()
}

func (c *pluginClient) get(ns, name string) *unstructured.Unstructured {
	c.h.t.Helper()
	u, err := c.h.dyn.Resource(WasmPluginResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.h.t.Fatal(err)
	}
	return u
}

// update changes the spec of a plugin as a user would: the object read
// back, the spec changed, the generation bumped (the fake does not).
func (c *pluginClient) update(ns, name string, change func(spec map[string]any)) string {
	c.h.t.Helper()
	u := c.get(ns, name)
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	change(spec)
	u.Object["spec"] = spec
	u.SetGeneration(u.GetGeneration() + 1)
	out, err := c.h.dyn.Resource(WasmPluginResource).Namespace(ns).Update(context.Background(), u, metav1.UpdateOptions{})
	if err != nil {
		c.h.t.Fatal(err)
	}
	return ns + "/" + name + "@" + out.GetResourceVersion()
}

func (c *pluginClient) delete(ns, name string) string {
	c.h.t.Helper()
	if err := c.h.dyn.Resource(WasmPluginResource).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		c.h.t.Fatal(err)
	}
	return ns + "/" + name + "@deleted"
}

// status is the phase, message and observedGeneration of a plugin.
func (c *pluginClient) status(ns, name string) (phase, msg string, gen int64) {
	u := c.get(ns, name)
	phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ = unstructured.NestedString(u.Object, "status", "message")
	gen, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return phase, msg, gen
}

func (h *harness) updateConfigMap(data map[string]string) {
	h.t.Helper()
	cm := configMap(data)
	if _, err := h.cs.CoreV1().ConfigMaps(testNS).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// events lists "Type Reason: message" of the Events about one object.
func (h *harness) events(ns, kind, name string) []string {
	h.t.Helper()
	list, err := h.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

func (h *harness) hasEvent(ns, kind, name, prefix string) bool {
	for _, e := range h.events(ns, kind, name) {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// --- fixtures ---

const testCluster = `apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: backend}
spec:
  endpoints: [{address: "127.0.0.1:8000"}]
`

const testGateway = `apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  listeners: [{address: "0.0.0.0:8080"}]
`

func testRoute(name string) string {
	return "apiVersion: sluice.dev/v1alpha1\nkind: Route\nmetadata: {name: " + name + "}\nspec: {cluster: backend}\n"
}

func configMap(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: testCM, Namespace: testNS, UID: "cm-uid"},
		Data:       data,
	}
}

func baseConfigMap() *corev1.ConfigMap {
	return configMap(map[string]string{
		"20-routes.yaml":   testRoute("chat"),
		"10-cluster.yaml":  testGateway + "---\n" + testCluster,
		"30-comments.yaml": "# nothing but a comment\nkind: Route\napiVersion: sluice.dev/v1alpha1\nmetadata: {name: other}\nspec: {cluster: backend}\n",
	})
}

func wasmPlugin(ns, name string, gen int64, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "extensions.higress.io/v1alpha1",
		"kind":       "WasmPlugin",
		"metadata": map[string]any{
			"name":       name,
			"namespace":  ns,
			"generation": gen,
			"uid":        ns + "-" + name + "-uid",
		},
		"spec": spec,
	}}
	return u
}

func pluginSpec(url string) map[string]any {
	return map[string]any{"url": url, "phase": "AUTHN", "priority": int64(10),
		"defaultConfig": map[string]any{"allow": []any{"a", "b"}}}
}

// summarize renders what a Snapshot holds, for comparisons.
func summarize(s *config.Snapshot) string {
	if s == nil {
		return "<nil>"
	}
	var plugins, routes []string
	for _, p := range s.WasmPlugins {
		plugins = append(plugins, config.PluginName(p)+"="+p.Spec.URL)
	}
	for _, r := range s.Routes {
		routes = append(routes, config.RouteName(r))
	}
	return "files=" + strings.Join(s.Files, ",") + "\nroutes=" + strings.Join(routes, ",") +
		"\nplugins=" + strings.Join(plugins, ",")
}

func wantSnapshot(t *testing.T, s *config.Snapshot, want string) {
	t.Helper()
	if got := summarize(s); got != want {
		t.Errorf("snapshot:\n%s\nwant:\n%s", got, want)
	}
}

const baseFiles = "files=configmap/gw/sluice-config:10-cluster.yaml,configmap/gw/sluice-config:20-routes.yaml,configmap/gw/sluice-config:30-comments.yaml"

// --- tests ---

func TestInitialSync(t *testing.T) {
	h := newHarness(t, baseConfigMap(),
		wasmPlugin("zeta", "b", 3, pluginSpec("oci://r/zb:1")),
		wasmPlugin("alpha", "z", 1, pluginSpec("oci://r/az:1")),
		wasmPlugin("alpha", "a", 2, pluginSpec("oci://r/aa:1")),
	)
	snap := h.initialApply()
	wantSnapshot(t, snap, baseFiles+",wasmplugin/alpha/a,wasmplugin/alpha/z,wasmplugin/zeta/b"+
		"\nroutes=chat,other\nplugins=alpha.a=oci://r/aa:1,alpha.z=oci://r/az:1,zeta.b=oci://r/zb:1")
	if got := snap.Gateway.Spec.Listeners[0].Address; got != "0.0.0.0:8080" {
		t.Errorf("listener = %q, want the ConfigMap's Gateway", got)
	}
	p := snap.WasmPlugins[0].Spec
	if p.Phase != "AUTHN" || p.Priority == nil || *p.Priority != 10 || len(p.DefaultConfig["allow"].([]any)) != 2 {
		t.Errorf("spec not carried over: %+v", p)
	}
	pc := h.plugins()
	h.waitFor("Applied events", func() bool { return h.hasEvent("zeta", "WasmPlugin", "b", "Normal Applied") })
	for _, tc := range []struct {
		ns, name string
		gen      int64
	}{{"alpha", "a", 2}, {"alpha", "z", 1}, {"zeta", "b", 3}} {
		phase, msg, gen := pc.status(tc.ns, tc.name)
		if phase != PhaseReady || msg != "applied" || gen != tc.gen {
			t.Errorf("%s/%s status = %s %q gen %d, want Ready \"applied\" gen %d", tc.ns, tc.name, phase, msg, gen, tc.gen)
		}
		if !h.hasEvent(tc.ns, "WasmPlugin", tc.name, "Normal Applied: applied in configuration "+snap.Hash[:12]) {
			t.Errorf("%s/%s: no Applied event: %v", tc.ns, tc.name, h.events(tc.ns, "WasmPlugin", tc.name))
		}
	}
	if !h.hasEvent(testNS, "ConfigMap", testCM, "Normal Applied") {
		t.Errorf("no Applied event on the ConfigMap: %v", h.events(testNS, "ConfigMap", testCM))
	}
}

func TestWasmPluginChanges(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "keep", 1, pluginSpec("oci://r/keep:1")))
	h.initialApply()
	pc := h.plugins()

	// Several quick changes end in one Apply that has them all.
	h.waitChanges(
		pc.create(wasmPlugin("ns", "c", 1, pluginSpec("oci://r/c:1"))),
		pc.create(wasmPlugin("ns", "a", 1, pluginSpec("oci://r/a:1"))),
		pc.create(wasmPlugin("other", "b", 1, pluginSpec("oci://r/b:1"))),
	)
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/a,wasmplugin/ns/c,wasmplugin/ns/keep,wasmplugin/other/b"+
		"\nroutes=chat,other\nplugins=ns.a=oci://r/a:1,ns.c=oci://r/c:1,ns.keep=oci://r/keep:1,other.b=oci://r/b:1")

	// The watcher's own status writes do not cause another Apply: the
	// next one is for the next real change.
	pc.update("ns", "a", func(spec map[string]any) { spec["url"] = "oci://r/a:2" })
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/a,wasmplugin/ns/c,wasmplugin/ns/keep,wasmplugin/other/b"+
		"\nroutes=chat,other\nplugins=ns.a=oci://r/a:2,ns.c=oci://r/c:1,ns.keep=oci://r/keep:1,other.b=oci://r/b:1")
	h.waitFor("status of the update", func() bool {
		phase, _, gen := pc.status("ns", "a")
		return phase == PhaseReady && gen == 2
	})

	pc.delete("ns", "c")
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/a,wasmplugin/ns/keep,wasmplugin/other/b"+
		"\nroutes=chat,other\nplugins=ns.a=oci://r/a:2,ns.keep=oci://r/keep:1,other.b=oci://r/b:1")

	// Create, update and delete in one window: one Apply.
	h.waitChanges(
		pc.create(wasmPlugin("ns", "d", 1, pluginSpec("oci://r/d:1"))),
		pc.update("other", "b", func(spec map[string]any) { spec["url"] = "oci://r/b:2" }),
		pc.delete("ns", "a"),
	)
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/d,wasmplugin/ns/keep,wasmplugin/other/b"+
		"\nroutes=chat,other\nplugins=ns.d=oci://r/d:1,ns.keep=oci://r/keep:1,other.b=oci://r/b:2")

	// Only changed objects get an Applied event: keep was applied once.
	h.waitFor("Applied event on ns/d", func() bool { return h.hasEvent("ns", "WasmPlugin", "d", "Normal Applied") })
	if n := len(h.events("ns", "WasmPlugin", "keep")); n != 1 {
		t.Errorf("ns/keep has %d events, want 1: %v", n, h.events("ns", "WasmPlugin", "keep"))
	}
}

func TestConfigMapChangeReapplies(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "p", 1, pluginSpec("oci://r/p:1")))
	h.initialApply()

	h.updateConfigMap(map[string]string{
		"10-cluster.yaml": testCluster,
		"05-routes.yaml":  testRoute("first") + "---\n" + testRoute("second"),
	})
	snap := h.nextApply()
	wantSnapshot(t, snap, "files=configmap/gw/sluice-config:05-routes.yaml,configmap/gw/sluice-config:10-cluster.yaml,wasmplugin/ns/p"+
		"\nroutes=first,second\nplugins=ns.p=oci://r/p:1")
	if got := snap.Gateway.Spec.Listeners[0].Address; got != "127.0.0.1:8080" {
		t.Errorf("listener = %q, want the default once the Gateway is gone", got)
	}
	h.waitFor("a second Applied event on the ConfigMap", func() bool {
		return len(h.events(testNS, "ConfigMap", testCM)) == 2
	})
}

func TestInvalidWasmPluginIsRejected(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "good", 1, pluginSpec("oci://r/good:1")))
	h.initialApply()
	pc := h.plugins()

	bad := pluginSpec("oci://r/bad:1")
	bad["colour"] = "red"
	pc.create(wasmPlugin("ns", "bad", 4, bad))
	pc.update("ns", "good", func(spec map[string]any) { spec["url"] = "oci://r/good:2" })

	h.waitFor("Failed status on ns/bad", func() bool { phase, _, _ := pc.status("ns", "bad"); return phase == PhaseFailed })
	phase, msg, gen := pc.status("ns", "bad")
	for _, want := range []string{
		"configuration rejected, the previous configuration stays in force: ",
		"WasmPlugin/bad: spec.colour: unknown field",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("status message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "wasmplugin/ns/bad:") {
		t.Errorf("status message %q points at lines of the rendered document", msg)
	}
	if phase != PhaseFailed || gen != 4 {
		t.Errorf("status = %s gen %d, want Failed gen 4", phase, gen)
	}
	if !h.hasEvent("ns", "WasmPlugin", "bad", "Warning Rejected: configuration rejected") {
		t.Errorf("no Rejected event: %v", h.events("ns", "WasmPlugin", "bad"))
	}
	h.waitFor("Pending status on ns/good", func() bool { phase, _, _ := pc.status("ns", "good"); return phase == PhasePending })
	if _, msg, _ := pc.status("ns", "good"); !strings.Contains(msg, "because of wasmplugin/ns/bad") {
		t.Errorf("ns/good status message %q does not name the culprit", msg)
	}
	h.noApply() // the statuses are written after Apply would have been called

	// Fixing the plugin applies everything that waited.
	pc.update("ns", "bad", func(spec map[string]any) { delete(spec, "colour") })
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/bad,wasmplugin/ns/good"+
		"\nroutes=chat,other\nplugins=ns.bad=oci://r/bad:1,ns.good=oci://r/good:2")
	h.waitFor("Ready statuses", func() bool {
		a, _, _ := pc.status("ns", "bad")
		b, _, _ := pc.status("ns", "good")
		return a == PhaseReady && b == PhaseReady
	})
}

func TestInvalidConfigMapIsRejected(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "p", 1, pluginSpec("oci://r/p:1")))
	h.initialApply()
	h.updateConfigMap(map[string]string{"10-cluster.yaml": testCluster, "20-routes.yaml": strings.Replace(testRoute("chat"), "spec: {cluster: backend}", "spec:\n  cluster: backend\n  timeout: soon", 1)})
	h.waitFor("Rejected event on the ConfigMap", func() bool {
		return h.hasEvent(testNS, "ConfigMap", testCM, "Warning Rejected")
	})
	ev := strings.Join(h.events(testNS, "ConfigMap", testCM), "\n")
	if !strings.Contains(ev, "20-routes.yaml:6: Route/chat: spec.timeout:") {
		t.Errorf("event does not point at the key and line:\n%s", ev)
	}
	h.noApply()
	// The plugin did not change: its status still says Ready.
	if phase, _, _ := h.plugins().status("ns", "p"); phase != PhaseReady {
		t.Errorf("unchanged plugin's status = %s, want Ready", phase)
	}
}

func TestMissingConfigMap(t *testing.T) {
	h := newHarness(t, nil, wasmPlugin("ns", "p", 1, pluginSpec("oci://r/p:1")))
	pc := h.plugins()
	h.waitFor("Pending status", func() bool { phase, _, _ := pc.status("ns", "p"); return phase == PhasePending })
	if _, msg, _ := pc.status("ns", "p"); !strings.Contains(msg, "configmap/gw/sluice-config") {
		t.Errorf("status message %q does not name the ConfigMap", msg)
	}
	h.noApply()
	if _, err := h.cs.CoreV1().ConfigMaps(testNS).Create(context.Background(), baseConfigMap(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wantSnapshot(t, h.nextApply(), baseFiles+",wasmplugin/ns/p\nroutes=chat,other\nplugins=ns.p=oci://r/p:1")
}

func TestApplyResultFailedPlugin(t *testing.T) {
	h := newHarness(t, baseConfigMap(),
		wasmPlugin("ns", "ok", 1, pluginSpec("oci://r/ok:1")),
		wasmPlugin("ns", "broken", 2, pluginSpec("oci://r/broken:1")))
	h.setResult(func(*config.Snapshot) (ApplyResult, error) {
		return ApplyResult{Plugins: map[string]error{"ns.broken": errors.New("fetch oci://r/broken:1: 404 Not Found")}}, nil
	})
	h.initialApply()
	pc := h.plugins()
	h.waitFor("PluginFailed event", func() bool {
		return h.hasEvent("ns", "WasmPlugin", "broken", "Warning PluginFailed: plugin failed: fetch oci://r/broken:1: 404 Not Found")
	})
	if phase, msg, gen := pc.status("ns", "broken"); phase != PhaseFailed || msg != "plugin failed: fetch oci://r/broken:1: 404 Not Found" || gen != 2 {
		t.Errorf("ns/broken status = %s %q gen %d", phase, msg, gen)
	}
	h.waitFor("ns/ok Ready", func() bool { phase, _, _ := pc.status("ns", "ok"); return phase == PhaseReady })
	if h.hasEvent("ns", "WasmPlugin", "broken", "Normal Applied") {
		t.Error("a failed plugin got an Applied event")
	}
}

func TestApplyErrorKeepsRunningConfig(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "old", 1, pluginSpec("oci://r/old:1")))
	h.initialApply()
	h.setResult(func(*config.Snapshot) (ApplyResult, error) {
		return ApplyResult{}, errors.New("listener 0.0.0.0:8080: address in use")
	})
	pc := h.plugins()
	pc.create(wasmPlugin("ns", "new", 1, pluginSpec("oci://r/new:1")))
	h.nextApply()
	h.waitFor("Failed status on ns/new", func() bool { phase, _, _ := pc.status("ns", "new"); return phase == PhaseFailed })
	if _, msg, _ := pc.status("ns", "new"); !strings.Contains(msg, "address in use") {
		t.Errorf("status message %q lacks the gateway's error", msg)
	}
	if !h.hasEvent("ns", "WasmPlugin", "new", "Warning Rejected: the gateway refused the configuration") {
		t.Errorf("events: %v", h.events("ns", "WasmPlugin", "new"))
	}
	if phase, _, _ := pc.status("ns", "old"); phase != PhaseReady {
		t.Errorf("unchanged ns/old status = %s, want Ready", phase)
	}
}

func TestDebounceIsCutOff(t *testing.T) {
	h := newHarness(t, baseConfigMap())
	h.initialApply()
	pc := h.plugins()
	// A change every half debounce: the build still happens, ten debounce
	// periods after the first change.
	for i := 0; i <= 22; i++ {
		pc.create(wasmPlugin("ns", fmt.Sprintf("p%02d", i), 1, pluginSpec("oci://r/x:1")))
		select {
		case <-h.armed:
		case <-time.After(waitLimit):
			t.Fatalf("change %d did not start the debounce timer", i)
		}
		h.clock.Step(testDebounce / 2)
		select {
		case s := <-h.applies:
			// The timer of change 19 ends at 10×debounce; the Snapshot
			// may already hold a later change.
			if n := len(s.WasmPlugins); i < 19 || n < 20 {
				t.Errorf("Apply after change %d with %d plugins, want it after change 19", i, n)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no Apply during a stream of changes")
}

func TestStatusWriteRetriesOnConflict(t *testing.T) {
	h := newHarness(t, baseConfigMap(), wasmPlugin("ns", "p", 1, pluginSpec("oci://r/p:1")))
	h.initialApply()
	pc := h.plugins()
	h.waitFor("Ready", func() bool { phase, _, _ := pc.status("ns", "p"); return phase == PhaseReady })
	stale := pc.get("ns", "p")
	pc.update("ns", "p", func(spec map[string]any) { spec["url"] = "oci://r/p:2" })
	// The clock does not move, so the watcher does not build meanwhile.
	if !h.w.setStatus(context.Background(), &object{plugin: stale}, PhaseFailed, "from a stale copy") {
		t.Fatal("status not written")
	}
	u := pc.get("ns", "p")
	if url, _, _ := unstructured.NestedString(u.Object, "spec", "url"); url != "oci://r/p:2" {
		t.Errorf("spec.url = %s: the status write reverted the spec", url)
	}
	if phase, msg, _ := pc.status("ns", "p"); phase != PhaseFailed || msg != "from a stale copy" {
		t.Errorf("status = %s %q", phase, msg)
	}
}
