// Package config loads Sluice's configuration: it reads YAML files or
// directories, decodes every document strictly into the api/v1alpha1
// types, validates each resource and the references between them, applies
// defaults and returns one immutable Snapshot with a content hash.
//
// Every problem found in a load is reported at once, as an ErrorList whose
// entries name the file, line, resource and field:
//
//	routes.yaml:12: Route/chat: spec.cluster: cluster "opneai" does not exist (did you mean "openai"?)
//
// Non-fatal findings come back as Snapshot.Warnings in the same format.
//
// The package only reads: it looks at the files a configuration names
// (TLS certificates, CA bundles, the access log's directory) to report
// mistakes early, but it never opens sockets, fetches plugins, starts
// goroutines or keeps state between loads. Applying a Snapshot is the job
// of the packages that serve traffic; docs/configuration.md is the user
// reference for what is accepted here.
package config
