package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

// TestKubeFirstApplyReportsFailedPlugins: the first configuration starts
// the gateway, and a plugin that failed to load is reported to the
// watcher by its config name, the others not.
func TestKubeFirstApplyReportsFailedPlugins(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.wasm")
	snap, err := config.Parse(filepath.Join(t.TempDir(), "k8s.yaml"), []byte(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: k}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: "off"}
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: broken, namespace: ns}
spec:
  url: file://`+missing+`
  failStrategy: FAIL_OPEN
  defaultConfig: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeGateway{opts: app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WasmCacheDir: "off"}}
	res, err := k.apply(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = k.shutdown(slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	if k.app == nil {
		t.Fatal("the first configuration did not start the gateway")
	}
	perr := res.Plugins[config.PluginName(snap.WasmPlugins[0])]
	if len(res.Plugins) != 1 || perr == nil || !strings.Contains(perr.Error(), "missing.wasm") {
		t.Errorf("apply result %v, want the broken plugin's load error", res.Plugins)
	}
}
