// Package v1alpha1 holds the configuration types users write for Sluice.
//
// A configuration is a set of YAML documents in the Kubernetes style
// (apiVersion, kind, metadata, spec). Four kinds exist:
//
//   - Gateway (sluice.dev/v1alpha1): listeners, timeouts, limits, the admin
//     listener, access log and tracing. At most one per configuration.
//   - Cluster (sluice.dev/v1alpha1): a named set of upstream endpoints that
//     routes and plugins address.
//   - Route (sluice.dev/v1alpha1): which requests go to which cluster.
//   - WasmPlugin (extensions.higress.io/v1alpha1): Higress's plugin resource,
//     field for field, so existing YAML can be pasted in unchanged.
//
// The field documentation here is the user reference: docs/configuration.md
// is written from it. This package only declares types and their YAML shape;
// decoding, defaults and validation live in internal/config.
package v1alpha1
