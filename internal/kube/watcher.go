package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/sluicegw/sluice/internal/config"
)

// WasmPluginResource is Higress's plugin resource.
var WasmPluginResource = schema.GroupVersionResource{
	Group:    "extensions.higress.io",
	Version:  "v1alpha1",
	Resource: "wasmplugins",
}

// ApplyResult is what the gateway made of an accepted Snapshot.
type ApplyResult struct {
	// Plugins maps a plugin's config.PluginName ("namespace.name") to the
	// error it failed with (fetch, compile, configure). A plugin that is
	// not listed, or listed with a nil error, is running.
	Plugins map[string]error
}

// ApplyFunc puts a valid Snapshot into service. An error means the
// gateway refused the Snapshot as a whole and still runs the previous one;
// a plugin that failed on its own is reported in the ApplyResult instead.
type ApplyFunc func(ctx context.Context, snap *config.Snapshot) (ApplyResult, error)

// Options configure a Watcher.
type Options struct {
	// Dynamic reads WasmPlugins and writes their status. Required.
	Dynamic dynamic.Interface
	// Clientset reads the ConfigMap and creates Events. Required.
	Clientset kubernetes.Interface
	// Namespace limits the WasmPlugins watched; "" watches all namespaces.
	Namespace string
	// ConfigMap holds the gateway's own YAML, one or more documents per
	// data key, keys read in sorted order. An empty Name means none: the
	// configuration is then the defaults plus the WasmPlugins.
	ConfigMap types.NamespacedName
	// Apply receives every valid Snapshot that differs from the last one
	// built, the first one included. Required.
	Apply ApplyFunc
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Debounce is how long the watcher waits after a change for more
	// changes before it builds a Snapshot; a stream of changes is cut off
	// after ten times this. Default 200ms.
	Debounce time.Duration
	// SyncTimeout bounds the wait for the first list of every watched
	// resource. Default one minute.
	SyncTimeout time.Duration
	// Instance names this gateway in the Events it writes
	// (reportingInstance). Default: the host name, which is the pod name
	// in a cluster.
	Instance string
}

// Watcher turns the WasmPlugins and the ConfigMap of a cluster into
// Snapshots for Options.Apply and reports the outcome on the objects.
// Run is called once; the Watcher's state belongs to Run's goroutine.
type Watcher struct {
	opts  Options
	log   *slog.Logger
	clock clock.Clock

	// dirty holds at most one pending "something changed".
	dirty chan struct{}
	// onEvent and onArm, when set (tests), are called after a change is
	// noted (op is add, update or delete) and after the loop has
	// (re)started the debounce timer.
	onEvent func(op string, obj any)
	onArm   func()
	// eventSeq makes Event names unique within one process.
	eventSeq atomic.Uint64
	running  atomic.Bool

	plugins    cache.GenericLister
	configMaps corelisters.ConfigMapLister

	// lastInput is the digest of the inputs last built, valid or not: the
	// same inputs are not built twice (this is also what stops the
	// watcher's own status writes from triggering builds).
	lastInput string
	// applied maps an object's key to the digest of its content in the
	// Snapshot last accepted.
	applied map[string]string
	// cmPluginErrors holds the last failure of each plugin declared in the
	// ConfigMap rather than as a WasmPlugin object.
	cmPluginErrors map[string]string
}

// New checks opts and returns a Watcher; nothing is watched until Run.
func New(opts Options) (*Watcher, error) {
	var missing []string
	if opts.Dynamic == nil {
		missing = append(missing, "Dynamic")
	}
	if opts.Clientset == nil {
		missing = append(missing, "Clientset")
	}
	if opts.Apply == nil {
		missing = append(missing, "Apply")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kube: options %v are required", missing)
	}
	if opts.ConfigMap.Name != "" && opts.ConfigMap.Namespace == "" {
		return nil, errors.New("kube: the ConfigMap needs a namespace")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = time.Minute
	}
	if opts.Instance == "" {
		opts.Instance, _ = os.Hostname()
	}
	return &Watcher{
		opts:           opts,
		log:            opts.Logger,
		clock:          clock.RealClock{},
		dirty:          make(chan struct{}, 1),
		applied:        map[string]string{},
		cmPluginErrors: map[string]string{},
	}, nil
}

// Run starts the informers, waits until they have listed everything,
// builds and applies the first configuration, then follows changes until
// ctx ends; it returns nil then. It fails when the first list does not
// complete within Options.SyncTimeout (the CRD is not installed, or RBAC
// does not allow the watcher to list).
func (w *Watcher) Run(ctx context.Context) error {
	if w.running.Swap(true) {
		return errors.New("kube: Run called twice")
	}
	ictx, cancel := context.WithCancel(ctx)
	dyn := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.opts.Dynamic, 0, w.opts.Namespace, nil)
	pluginInformer := dyn.ForResource(WasmPluginResource)
	w.plugins = pluginInformer.Lister()
	reg, err := pluginInformer.Informer().AddEventHandler(w.handler())
	if err != nil {
		cancel()
		return fmt.Errorf("kube: watch WasmPlugins: %w", err)
	}
	// A registration has synced once its handler has seen every object of
	// the first list, so those notes can be dropped before the first build.
	synced := []cache.InformerSynced{reg.HasSynced}

	var typed informers.SharedInformerFactory
	if cm := w.opts.ConfigMap; cm.Name != "" {
		typed = informers.NewSharedInformerFactoryWithOptions(w.opts.Clientset, 0,
			informers.WithNamespace(cm.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", cm.Name).String()
			}))
		cmInformer := typed.Core().V1().ConfigMaps()
		w.configMaps = cmInformer.Lister()
		h := cache.FilteringResourceEventHandler{FilterFunc: w.isConfigMap, Handler: w.handler()}
		reg, err := cmInformer.Informer().AddEventHandler(h)
		if err != nil {
			cancel()
			return fmt.Errorf("kube: watch ConfigMap: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}

	dyn.Start(ictx.Done())
	if typed != nil {
		typed.Start(ictx.Done())
	}
	defer func() {
		cancel()
		dyn.Shutdown()
		if typed != nil {
			typed.Shutdown()
		}
	}()

	sctx, scancel := context.WithTimeout(ictx, w.opts.SyncTimeout)
	ok := cache.WaitForCacheSync(sctx.Done(), synced...)
	scancel()
	if !ok {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kube: no complete list of %s (and the ConfigMap %s) after %s: "+
			"is the WasmPlugin CRD installed, and may this service account list and watch them?",
			WasmPluginResource.GroupResource(), w.opts.ConfigMap, w.opts.SyncTimeout)
	}
	w.log.Info("kubernetes: watching", "wasmplugins_namespace", namespaceLabel(w.opts.Namespace),
		"configmap", w.opts.ConfigMap.String())
	select {
	case <-w.dirty: // the first list; the first build reads it all
	default:
	}
	w.sync(ctx)
	w.loop(ctx)
	return nil
}

// handler notes every change; what changed is read from the caches when
// the debounce ends.
func (w *Watcher) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.note("add", obj) },
		UpdateFunc: func(_, obj any) { w.note("update", obj) },
		DeleteFunc: func(obj any) { w.note("delete", obj) },
	}
}

func (w *Watcher) note(op string, obj any) {
	select {
	case w.dirty <- struct{}{}:
	default: // a build is already pending
	}
	if w.onEvent != nil {
		w.onEvent(op, obj)
	}
}

func (w *Watcher) isConfigMap(obj any) bool {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	return ok && cm.Namespace == w.opts.ConfigMap.Namespace && cm.Name == w.opts.ConfigMap.Name
}

// loop builds a Snapshot once no change has been noted for Debounce, or
// at the latest 10×Debounce after the first change of a stream.
func (w *Watcher) loop(ctx context.Context) {
	var (
		timer clock.Timer
		fire  <-chan time.Time
		first time.Time
	)
	maxDelay := 10 * w.opts.Debounce
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.dirty:
			now := w.clock.Now()
			if timer == nil {
				first = now
			} else {
				timer.Stop()
			}
			d := min(w.opts.Debounce, first.Add(maxDelay).Sub(now))
			timer = w.clock.NewTimer(max(d, 0))
			fire = timer.C()
			if w.onArm != nil {
				w.onArm()
			}
		case <-fire:
			timer, fire = nil, nil
			w.sync(ctx)
		}
	}
}

// object is one Kubernetes object that contributed to the inputs.
type object struct {
	key    string // source name of a WasmPlugin; configmap/ns/name
	plugin *unstructured.Unstructured
	cm     *corev1.ConfigMap
	// pluginName is config.PluginName of a WasmPlugin object.
	pluginName string
	// digest identifies the object's content as the configuration sees it.
	digest string
	// sources are the source names it contributed.
	sources []string
}

func (o *object) ref() corev1.ObjectReference {
	if o.cm != nil {
		return corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: o.cm.Namespace,
			Name: o.cm.Name, UID: o.cm.UID, ResourceVersion: o.cm.ResourceVersion}
	}
	return corev1.ObjectReference{APIVersion: o.plugin.GetAPIVersion(), Kind: o.plugin.GetKind(),
		Namespace: o.plugin.GetNamespace(), Name: o.plugin.GetName(), UID: o.plugin.GetUID(),
		ResourceVersion: o.plugin.GetResourceVersion()}
}

// inputs reads the caches: the ConfigMap's keys in sorted order, then the
// WasmPlugins sorted by namespace and name. problems are inputs that could
// not be turned into sources (a missing ConfigMap).
func (w *Watcher) inputs() (srcs []config.Source, objs []*object, problems config.ErrorList) {
	if cmKey := w.opts.ConfigMap; cmKey.Name != "" {
		cm, err := w.configMaps.ConfigMaps(cmKey.Namespace).Get(cmKey.Name)
		switch {
		case err != nil:
			problems = append(problems, &config.Error{File: configMapName(cmKey.Namespace, cmKey.Name),
				Message: "ConfigMap not found", Hint: "create it, or name another one with --configmap"})
		default:
			o := &object{key: configMapName(cm.Namespace, cm.Name), cm: cm}
			keys := make([]string, 0, len(cm.Data))
			for k := range cm.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			h := sha256.New()
			for _, k := range keys {
				name := configMapSourceName(cm.Namespace, cm.Name, k)
				srcs = append(srcs, config.Source{Name: name, Data: []byte(cm.Data[k])})
				o.sources = append(o.sources, name)
				fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(cm.Data[k]), cm.Data[k])
			}
			o.digest = hex.EncodeToString(h.Sum(nil))
			objs = append(objs, o)
		}
	}
	list, err := w.plugins.List(labels.Everything())
	if err != nil { // a cache lister does not fail; be safe
		problems = append(problems, &config.Error{Message: "list WasmPlugins: " + err.Error()})
	}
	var plugins []*unstructured.Unstructured
	for _, ro := range list {
		if u, ok := ro.(*unstructured.Unstructured); ok {
			plugins = append(plugins, u)
		}
	}
	sort.Slice(plugins, func(i, j int) bool {
		if plugins[i].GetNamespace() != plugins[j].GetNamespace() {
			return plugins[i].GetNamespace() < plugins[j].GetNamespace()
		}
		return plugins[i].GetName() < plugins[j].GetName()
	})
	for _, u := range plugins {
		name := pluginSourceName(u.GetNamespace(), u.GetName())
		o := &object{key: name, plugin: u, pluginName: pluginName(u), sources: []string{name}}
		data, err := renderObject(u)
		if err != nil {
			problems = append(problems, &config.Error{File: name, Message: err.Error()})
		} else {
			srcs = append(srcs, config.Source{Name: name, Data: data})
			sum := sha256.Sum256(data)
			o.digest = hex.EncodeToString(sum[:])
		}
		objs = append(objs, o)
	}
	return srcs, objs, problems
}

// pluginName is config.PluginName for a WasmPlugin object.
func pluginName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "." + u.GetName()
	}
	return u.GetName()
}

// inputDigest identifies one set of inputs.
func inputDigest(srcs []config.Source, problems config.ErrorList) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d:%s%d:", len(s.Name), s.Name, len(s.Data))
		h.Write(s.Data)
	}
	for _, p := range problems {
		fmt.Fprintf(h, "problem:%s\n", p.Error())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sync builds a Snapshot from the caches and, when it is valid and new,
// applies it; then it reports the outcome.
func (w *Watcher) sync(ctx context.Context) {
	srcs, objs, problems := w.inputs()
	digest := inputDigest(srcs, problems)
	if digest == w.lastInput {
		return
	}
	w.lastInput = digest
	snap, err := config.ParseSources(srcs)
	if len(problems) > 0 {
		var list config.ErrorList
		errors.As(err, &list)
		err = append(problems, list...)
		snap = nil
	}
	if err != nil {
		w.rejected(ctx, objs, err)
		return
	}
	for _, warn := range snap.Warnings {
		w.log.Warn("config", "warning", warn.Error())
	}
	res, err := w.opts.Apply(ctx, snap)
	if err != nil {
		w.refused(ctx, objs, err)
		return
	}
	w.accepted(ctx, objs, snap, res)
}

// namespaceLabel renders a namespace for logs.
func namespaceLabel(ns string) string {
	if ns == "" {
		return "(all)"
	}
	return ns
}
