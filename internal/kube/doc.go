// Package kube feeds the gateway its configuration from a Kubernetes
// cluster. It watches Higress WasmPlugin objects
// (wasmplugins.extensions.higress.io/v1alpha1) in one namespace or all, and
// one ConfigMap whose data keys hold Sluice's own YAML (Gateway, Cluster and
// Route documents). After every change, debounced, it builds one
// config.Snapshot from both and hands it to an Apply callback; then it
// reports the outcome on the objects themselves, as a status on each
// WasmPlugin and as Kubernetes Events.
//
// An invalid configuration is rejected whole: Apply is not called, so the
// running configuration stays in force, and the objects at fault get a
// Warning event and a Failed status.
//
// The package only reads configuration and writes status and events. It
// must not build or run the gateway itself (it takes the Apply callback for
// that), and it must not decode configuration: that is internal/config's
// job, reached through config.ParseSources.
package kube
