package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"

	"github.com/sluicegw/sluice/internal/config"
)

// The status Sluice writes on a WasmPlugin. Higress's CRD declares status
// as an object with x-kubernetes-preserve-unknown-fields and writes none
// itself for WasmPlugins, so these fields are a Sluice extension:
//
//	status:
//	  phase: Ready | Failed | Pending
//	  message: applied
//	  observedGeneration: 3
const (
	// PhaseReady: the object's current content is running.
	PhaseReady = "Ready"
	// PhaseFailed: the content was rejected (the configuration is invalid,
	// or the gateway refused it), or the plugin failed to load; see message.
	PhaseFailed = "Failed"
	// PhasePending: the content is valid but not running, because another
	// object made the configuration invalid.
	PhasePending = "Pending"
)

// Event reasons.
const (
	ReasonApplied      = "Applied"
	ReasonRejected     = "Rejected"
	ReasonPluginFailed = "PluginFailed"
)

const (
	maxEventMessage  = 1024
	maxStatusMessage = 4096
	eventComponent   = "sluice"
	eventController  = "sluice.dev/gateway"
)

// keptNote ends the message of every rejection.
const keptNote = "the previous configuration stays in force"

// rejected reports an invalid configuration: each object with a problem in
// it gets a Warning event and, for a WasmPlugin, a Failed status; a
// WasmPlugin that changed but is itself fine becomes Pending.
func (w *Watcher) rejected(ctx context.Context, objs []*object, err error) {
	w.log.Error("kubernetes: configuration rejected; "+keptNote, "error", err.Error())
	var list config.ErrorList
	if !errors.As(err, &list) {
		list = config.ErrorList{{Message: err.Error()}}
	}
	owner := map[string]*object{}
	var cm *object
	for _, o := range objs {
		for _, s := range o.sources {
			owner[s] = o
		}
		if o.cm != nil {
			cm = o
		}
	}
	byObject := map[*object][]string{}
	var offenders []string
	seen := map[string]bool{}
	for _, e := range list {
		o := owner[e.File]
		if o == nil {
			o = cm // not from one source: the ConfigMap is where the config lives
		}
		culprit := e.File
		if o != nil {
			culprit = o.key
			byObject[o] = append(byObject[o], shortError(e, o))
		}
		if culprit != "" && !seen[culprit] {
			seen[culprit] = true
			offenders = append(offenders, culprit)
		}
	}
	because := "because of " + strings.Join(offenders, ", ")
	if len(offenders) == 0 {
		because = "(see the gateway's log)"
	}
	for _, o := range objs {
		if msgs := byObject[o]; len(msgs) > 0 {
			msg := "configuration rejected, " + keptNote + ": " + strings.Join(msgs, "; ")
			w.event(ctx, o, corev1.EventTypeWarning, ReasonRejected, msg)
			if o.plugin != nil {
				w.setStatus(ctx, o, PhaseFailed, msg)
			}
			continue
		}
		if o.plugin != nil && w.applied[o.key] != o.digest {
			w.setStatus(ctx, o, PhasePending, "not applied: the configuration is invalid "+because+"; "+keptNote)
		}
	}
}

// refused reports that the gateway refused a valid configuration: the
// objects that changed since the last accepted configuration get a
// Warning event and, for WasmPlugins, a Failed status.
func (w *Watcher) refused(ctx context.Context, objs []*object, err error) {
	w.log.Error("kubernetes: the gateway refused the configuration; "+keptNote, "error", err.Error())
	msg := "the gateway refused the configuration, " + keptNote + ": " + err.Error()
	for _, o := range objs {
		if w.applied[o.key] == o.digest {
			continue
		}
		w.event(ctx, o, corev1.EventTypeWarning, ReasonRejected, msg)
		if o.plugin != nil {
			w.setStatus(ctx, o, PhaseFailed, msg)
		}
	}
}

// accepted reports an applied configuration: Ready or Failed per plugin,
// an Applied event on each object that changed, a PluginFailed event for
// each plugin that newly failed.
func (w *Watcher) accepted(ctx context.Context, objs []*object, snap *config.Snapshot, res ApplyResult) {
	w.log.Info("kubernetes: configuration applied", "hash", snap.Hash, "wasmplugins", len(snap.WasmPlugins),
		"routes", len(snap.Routes), "clusters", len(snap.Clusters))
	applied := make(map[string]string, len(objs))
	objectPlugins := map[string]bool{}
	var cm *object
	for _, o := range objs {
		applied[o.key] = o.digest
		changed := w.applied[o.key] != o.digest
		if o.cm != nil {
			cm = o
			if changed {
				w.event(ctx, o, corev1.EventTypeNormal, ReasonApplied, "configuration "+short(snap.Hash)+" applied")
			}
			continue
		}
		objectPlugins[o.pluginName] = true
		if perr := res.Plugins[o.pluginName]; perr != nil {
			msg := "plugin failed: " + perr.Error()
			if w.setStatus(ctx, o, PhaseFailed, msg) || changed {
				w.event(ctx, o, corev1.EventTypeWarning, ReasonPluginFailed, msg)
			}
			continue
		}
		w.setStatus(ctx, o, PhaseReady, "applied")
		if changed {
			w.event(ctx, o, corev1.EventTypeNormal, ReasonApplied, "applied in configuration "+short(snap.Hash))
		}
	}
	// Plugins declared in the ConfigMap have no object of their own: their
	// failures are reported on the ConfigMap, once per distinct failure.
	cmErrors := map[string]string{}
	for _, p := range snap.WasmPlugins {
		name := config.PluginName(p)
		perr := res.Plugins[name]
		if objectPlugins[name] || perr == nil {
			continue
		}
		cmErrors[name] = perr.Error()
		if cm != nil && w.cmPluginErrors[name] != perr.Error() {
			w.event(ctx, cm, corev1.EventTypeWarning, ReasonPluginFailed, "plugin "+name+" failed: "+perr.Error())
		}
		w.log.Warn("kubernetes: plugin failed", "plugin", name, "error", perr.Error())
	}
	w.cmPluginErrors = cmErrors
	w.applied = applied
}

// setStatus writes the status of a WasmPlugin unless it already says the
// same, and reports whether it wrote. A conflict is retried on a fresh
// copy; an object deleted meanwhile is skipped.
func (w *Watcher) setStatus(ctx context.Context, o *object, phase, msg string) bool {
	u := o.plugin
	msg = truncate(msg, maxStatusMessage)
	want := map[string]any{"phase": phase, "message": msg, "observedGeneration": u.GetGeneration()}
	if sameStatus(u, want) {
		return false
	}
	client := w.opts.Dynamic.Resource(WasmPluginResource).Namespace(u.GetNamespace())
	obj := u.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj.Object["status"] = want
		_, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, gerr := client.Get(ctx, u.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			obj = fresh
		}
		return err
	})
	switch {
	case err == nil:
		return true
	case apierrors.IsNotFound(err):
		return false
	default:
		w.log.Warn("kubernetes: cannot write status", "wasmplugin", u.GetNamespace()+"/"+u.GetName(), "error", err.Error())
		return false
	}
}

func sameStatus(u *unstructured.Unstructured, want map[string]any) bool {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	gen, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return phase == want["phase"] && msg == want["message"] && gen == want["observedGeneration"]
}

// event creates one Event about o. Events are written directly, not
// through client-go's EventRecorder: the watcher already writes one event
// per object per distinct outcome, and a direct write keeps the order of
// events and status writes deterministic.
func (w *Watcher) event(ctx context.Context, o *object, typ, reason, msg string) {
	ref := o.ref()
	now := metav1.NewTime(w.clock.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x%x", ref.Name, now.UnixNano(), w.eventSeq.Add(1)),
			Namespace: ref.Namespace,
		},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             truncate(msg, maxEventMessage),
		Type:                typ,
		Source:              corev1.EventSource{Component: eventComponent, Host: w.opts.Instance},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: eventController,
		ReportingInstance:   w.opts.Instance,
	}
	if _, err := w.opts.Clientset.CoreV1().Events(ref.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		w.log.Warn("kubernetes: cannot write event", "object", o.key, "reason", reason, "error", err.Error())
	}
}

// shortError renders a configuration problem without the source name and
// line, which only make sense in the rendered document; for a ConfigMap
// key the key is kept ("a.yaml:12: …").
func shortError(e *config.Error, o *object) string {
	c := *e
	if o.cm != nil && strings.HasPrefix(c.File, o.key+":") {
		c.File = strings.TrimPrefix(c.File, o.key+":")
		return c.Error()
	}
	c.File, c.Line = "", 0
	return c.Error()
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
