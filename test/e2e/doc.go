// Package e2e holds Sluice's end-to-end tests: the whole gateway, assembled
// by internal/app from a YAML file the test writes, serving real HTTP on
// 127.0.0.1:0 in front of httptest upstreams and the LLM stand-in; and the
// sluice binary itself, built once per test run, for the CLI.
//
// It holds tests only and must not be imported.
package e2e
