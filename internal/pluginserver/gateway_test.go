package pluginserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/pluginoci"
	"github.com/sluicegw/sluice/internal/pluginoci/ocitest"
	"github.com/sluicegw/sluice/internal/plugins"
	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// TestGatewayLoadsHTTPAndOCIPlugins runs the real gateway (internal/app)
// with two WasmPlugins: the go/probe test plugin served by `sluice plugin
// serve` (http://, with sha256) and pushed to an in-process registry by
// `sluice plugin push` (oci://, Higress layout). Each stamps a request
// header; the upstream must see both.
func TestGatewayLoadsHTTPAndOCIPlugins(t *testing.T) {
	t.Setenv(plugins.CacheDirEnv, t.TempDir())
	probe := wasmtest.Plugin(t, "go/probe")

	serveDir := t.TempDir()
	write(t, filepath.Join(serveDir, "probe", "1.0.0", "plugin.wasm"), probe)
	srv := newServer(t, serveDir)
	httpURL := srv.URL + "/plugins/probe/1.0.0/plugin.wasm"

	reg := ocitest.Start(t, ocitest.Options{User: "ci", Password: "pw"})
	secret := reg.DockerConfig(t, t.TempDir())
	ociURL := "oci://" + reg.Host + "/plugins/probe:1.0.0"
	ref, err := pluginoci.ParseRef(ociURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&pluginoci.Client{CredentialsFile: secret}).Push(context.Background(), probe, ref, pluginoci.PushOptions{}); err != nil {
		t.Fatal(err)
	}

	stamp := func(header, value string) string {
		b, _ := json.Marshal(map[string]any{"on": map[string]any{"request_headers": []any{
			map[string]any{"op": "set_header", "key": header, "value": value}}}})
		return string(b)
	}
	up := plugintest.NewUpstream(t)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, up.URL) + fmt.Sprintf(`---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: from-http}
spec:
  url: %q
  sha256: %s
  priority: 20
  defaultConfig: %s
---
apiVersion: extensions.higress.io/v1alpha1
kind: WasmPlugin
metadata: {name: from-oci}
spec:
  url: %q
  imagePullPolicy: Always
  imagePullSecret: %s
  priority: 10
  defaultConfig: %s
`, httpURL, sum(probe), stamp("x-from-http", "yes"), ociURL, filepath.Base(secret), stamp("x-from-oci", "yes"))
	// imagePullSecret is relative to the configuration file.
	if err := os.Rename(secret, filepath.Join(dir, filepath.Base(secret))); err != nil {
		t.Fatal(err)
	}
	g := plugintest.Start(t, dir, docs)

	code, body := plugintest.PostChat(t, g.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s\n%s", code, body, g.Logs)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	for _, h := range []string{"x-from-http", "x-from-oci"} {
		if reqs[0].Header.Get(h) != "yes" {
			t.Errorf("upstream request lacks %s: %v\n%s", h, reqs[0].Header, g.Logs)
		}
	}
	for _, name := range []string{"from-http", "from-oci"} {
		if !strings.Contains(g.Logs.String(), `msg="plugin ready" plugin=`+name+" ") {
			t.Errorf("%s is not ready:\n%s", name, g.Logs)
		}
	}
	// The modules are in the plugin cache now.
	if _, err := os.Stat(filepath.Join(os.Getenv(plugins.CacheDirEnv), "sha256", sum(probe)+".wasm")); err != nil {
		t.Errorf("module not cached: %v", err)
	}
}
