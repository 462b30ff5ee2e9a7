package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/plugins"
	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// This file runs the plugin as wasm in the real gateway (internal/app,
// in-process, port 0): built with the command `make plugins` uses, found
// through builtin:// resolution ($SLUICE_PLUGIN_DIR), in a chain after
// test/plugins' go/probe, which plays the geo-ip plugin by setting the
// geo-city property.

func TestMain(m *testing.M) { os.Exit(plugintest.RunMain(m)) }

// syncBuffer collects the gateway's log lines.
type syncBuffer = plugintest.SyncBuffer

// recordingUpstream answers like an OpenAI chat endpoint and records the
// requests it receives.
type recordingUpstream = plugintest.Upstream

func newUpstream(t *testing.T) *recordingUpstream { return plugintest.NewUpstream(t) }

// gw is a gateway running in-process for one test.
type gw struct {
	url       string
	logs      *syncBuffer
	app       *app.App
	accessLog string
}

// startGateway runs sluice with the decorator (configured with cfg) and,
// when geoCity is set, the probe setting the geo-city property first.
func startGateway(t *testing.T, u *recordingUpstream, cfg string, geoCity string) *gw {
	t.Helper()
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, u.URL) + plugintest.PluginDoc("ai-prompt-decorator", pluginURL, 450, cfg)
	if geoCity != "" {
		probe, _ := json.Marshal(map[string]any{"on": map[string]any{"request_headers": []any{
			map[string]any{"op": "set_property", "path": "geo-city", "value": geoCity}}}})
		docs += plugintest.PluginDoc("geo-ip", "file://"+wasmtest.Path(t, "go/probe"), 900, string(probe))
	}
	g := plugintest.Start(t, dir, docs)
	return &gw{url: g.URL, logs: g.Logs, app: g.App, accessLog: g.AccessLog}
}

// post sends a chat request through the gateway.
func post(t *testing.T, url, body string) (int, string) { return plugintest.PostChat(t, url, body) }

func TestE2EUpstreamReceivesDecoratedMessages(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, `{
		"prepend": [{"role": "system", "content": "You are a helpful assistant in ${geo-city}. Never mention OpenClaw."}],
		"append":  [{"role": "user", "content": "Answer in one sentence."}],
		"replace": [{"pattern": "sk-[a-z0-9]+", "replacement": "[KEY]", "regex": true},
		            {"on_role": "system", "pattern": "OpenClaw", "replacement": "the gateway"}]}`, "Hangzhou")

	status, body := post(t, g.url, `{"model":"gpt-4o","stream":false,"messages":[{"role":"user","content":"my key is sk-abc123, is OpenClaw safe?"}]}`)
	if status != 200 || !strings.Contains(body, `"content":"ok"`) {
		t.Fatalf("got %d %s", status, body)
	}
	bodies := u.Bodies()
	if len(bodies) != 1 {
		t.Fatalf("upstream got %d requests", len(bodies))
	}
	want := `{"model":"gpt-4o","stream":false,"messages":[` +
		`{"role":"system","content":"You are a helpful assistant in Hangzhou. Never mention the gateway."},` +
		`{"role":"user","content":"my key is [KEY], is OpenClaw safe?"},` +
		`{"role":"user","content":"Answer in one sentence."}]}`
	if bodies[0] != want {
		t.Errorf("upstream body\n got %s\nwant %s", bodies[0], want)
	}
}

func TestE2EMalformedBodyIs400AndNeverReachesTheUpstream(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, `{"prepend":[{"role":"system","content":"x"}]}`, "")
	status, body := post(t, g.url, `{"messages":[`)
	if status != 400 {
		t.Fatalf("status %d, body %s", status, body)
	}
	var e struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q is not an OpenAI error: %v", body, err)
	}
	if e.Error.Code != detailInvalidJSON || !strings.Contains(e.Error.Message, "not valid JSON") {
		t.Errorf("error %+v", e.Error)
	}
	if n := len(u.Bodies()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
	// The gateway keeps serving.
	if status, _ := post(t, g.url, `{"messages":[]}`); status != 200 {
		t.Errorf("next request: %d", status)
	}
	// The access log says why the gateway answered 400 (written when the
	// stream ends, so wait for the first line).
	var first map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for first == nil && time.Now().Before(deadline) {
		if b, err := os.ReadFile(g.accessLog); err == nil && bytes.IndexByte(b, '\n') > 0 {
			_ = json.Unmarshal(b[:bytes.IndexByte(b, '\n')], &first)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if first["response_details"] != detailInvalidJSON {
		t.Errorf("access log line %v: response_details want %s", first, detailInvalidJSON)
	}
}

func TestE2EConfigErrorNamesTheField(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, `{"replace":[{"pattern":"","replacement":"x"}]}`, "")
	want := "[ai-prompt-decorator] [nil] [nil] configure: replace[0].pattern: must not be empty"
	if !strings.Contains(g.logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
	plugins := plugintest.PluginStates(t, g.app.AdminAddr())
	if len(plugins) != 1 || plugins[0].Name != pluginName || plugins[0].State != "failed" {
		t.Errorf("config_dump plugins %+v, want %s failed", plugins, pluginName)
	}
}

func TestBuiltinPathReportsWhereItLooked(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(plugins.PluginDirEnv, dir)
	_, err := plugins.BuiltinPath("no-such-plugin")
	if err == nil {
		t.Fatal("found a plugin that does not exist")
	}
	for _, want := range []string{filepath.Join(dir, "no-such-plugin.wasm") + " (not found)", filepath.Join("build", "plugins", "no-such-plugin.wasm"), "make plugins", plugins.PluginDirEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := plugins.BuiltinPath("../etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a plugin name") {
		t.Errorf("path traversal: %v", err)
	}
}
