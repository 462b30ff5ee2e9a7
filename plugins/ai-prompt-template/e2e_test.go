package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/plugintest"
)

// This file runs the plugin as wasm in the real gateway (internal/app,
// in-process, port 0): built with the command `make plugins` uses, found
// through builtin:// resolution ($SLUICE_PLUGIN_DIR), and checks what a
// recording upstream receives.

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

// startGateway runs sluice with the plugin configured with cfg.
func startGateway(t *testing.T, u *recordingUpstream, cfg string) *gw {
	t.Helper()
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, u.URL) + plugintest.PluginDoc("ai-prompt-template", pluginURL, 500, cfg)
	g := plugintest.Start(t, dir, docs)
	return &gw{url: g.URL, logs: g.Logs, app: g.App, accessLog: g.AccessLog}
}

// post sends a chat request through the gateway.
func post(t *testing.T, url, body string, headers ...string) (int, string) {
	return plugintest.PostChat(t, url, body, headers...)
}

const e2eConfig = `{"templates": [{"name": "developer-chat", "template": {"model": "gpt-3.5-turbo", "messages": [
	{"role": "system", "content": "You are a {{program}} expert, in {{language}} programming language."},
	{"role": "user", "content": "Write me a {{program}} program."}]}}]}`

func TestE2EUpstreamReceivesTheRenderedTemplate(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, e2eConfig)

	status, body := post(t, g.url, `{"template": "developer-chat", "properties": {"program": "\"quick\" sort", "language": "python"}}`,
		"template-enable", "true")
	if status != 200 || !strings.Contains(body, `"content":"ok"`) {
		t.Fatalf("got %d %s", status, body)
	}
	reqs := u.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	want := `{"model": "gpt-3.5-turbo", "messages": [
	{"role": "system", "content": "You are a \"quick\" sort expert, in python programming language."},
	{"role": "user", "content": "Write me a \"quick\" sort program."}]}`
	// The gateway hands the plugin its configuration re-serialised from
	// YAML (keys sorted, spaces dropped), so compare as JSON values.
	var got, exp any
	if err := json.Unmarshal([]byte(reqs[0].Body), &got); err != nil {
		t.Fatalf("upstream body %s is not JSON: %v", reqs[0].Body, err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("upstream body\n got %s\nwant %s", reqs[0].Body, want)
	}
	if cl := reqs[0].Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(reqs[0].Body)) {
		t.Errorf("content-length %s for a %d-byte body", cl, len(reqs[0].Body))
	}
	if v := reqs[0].Header.Get("Template-Enable"); v != "" {
		t.Errorf("template-enable forwarded upstream: %q", v)
	}
}

func TestE2ETemplateDisabledAndNonTemplateBodiesPassUnchanged(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, e2eConfig)
	sent := []string{
		`{"template": "developer-chat", "properties": {"program": "x"}}`, // with template-enable: false
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
	}
	if status, body := post(t, g.url, sent[0], "template-enable", "false"); status != 200 {
		t.Fatalf("disabled: %d %s", status, body)
	}
	if status, body := post(t, g.url, sent[1]); status != 200 {
		t.Fatalf("plain chat: %d %s", status, body)
	}
	reqs := u.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.Body != sent[i] {
			t.Errorf("request %d: upstream body %s, want it unchanged %s", i, r.Body, sent[i])
		}
	}
}

func TestE2EBadRequestsAre400AndNeverReachTheUpstream(t *testing.T) {
	u := newUpstream(t)
	g := startGateway(t, u, e2eConfig)
	for _, tc := range []struct{ name, body, code, message string }{
		{"malformed JSON", `{"template": "developer-chat",`, detailInvalidJSON, "not valid JSON"},
		{"unknown template", `{"template": "nope", "properties": {}}`, detailUnknownTemplate, `unknown template "nope" (known: developer-chat)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, g.url, tc.body)
			if status != 400 {
				t.Fatalf("status %d, body %s", status, body)
			}
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q is not an OpenAI error: %v", body, err)
			}
			if e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("error %+v, want code %s and a message with %q", e.Error, tc.code, tc.message)
			}
		})
	}
	if n := len(u.Requests()); n != 0 {
		t.Errorf("upstream got %d requests", n)
	}
	// The gateway keeps serving.
	if status, _ := post(t, g.url, `{"template":"developer-chat","properties":{}}`); status != 200 {
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
	g := startGateway(t, u, `{"templates":[{"name":"","template":"x"}]}`)
	want := `[ai-prompt-template] [nil] [nil] configure: templates[0].name: must not be empty`
	if !strings.Contains(g.logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
	plugins := plugintest.PluginStates(t, g.app.AdminAddr())
	if len(plugins) != 1 || plugins[0].Name != pluginName || plugins[0].State != "failed" {
		t.Errorf("config_dump plugins %+v, want %s failed", plugins, pluginName)
	}
}
