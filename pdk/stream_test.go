package pdk_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// probeConfig scripts the probe plugin below.
type probeConfig struct {
	Tag     string `json:"tag"`
	ReplyAt string `json:"reply_at"` // phase name: answer 403 there
	PanicAt string `json:"panic_at"` // phase name: panic there
	Logs    int    `json:"logs"`     // debug lines per callback
}

// events records what the probe's callbacks saw, per test.
var events []string

func record(format string, args ...any) { events = append(events, fmt.Sprintf(format, args...)) }

func act(ctx *pdk.Context, cfg *probeConfig, phase string) pdk.Action {
	for i := 0; i < cfg.Logs; i++ {
		ctx.Log().Debugf("%s line %d", phase, i)
	}
	if cfg.PanicAt == phase {
		panic("boom in " + phase)
	}
	if cfg.ReplyAt == phase {
		return ctx.ReplyError(403, "", "probe.denied", "denied at "+phase)
	}
	return pdk.Continue
}

// probe is a plugin with every callback: it records calls, tags request
// headers, upper-cases buffered request bodies and streamed response
// chunks.
var probe = pdk.Plugin[*probeConfig]{
	Name:  "probe",
	Parse: pdk.DecodeConfig[probeConfig],
	OnRequestHeaders: func(ctx *pdk.Context, cfg *probeConfig) pdk.Action {
		record("request headers tag=%s path=%s", cfg.Tag, ctx.Path())
		_ = ctx.SetRequestHeader("x-tag", cfg.Tag)
		return act(ctx, cfg, "request headers")
	},
	OnRequestBody: func(ctx *pdk.Context, cfg *probeConfig, body []byte) pdk.Action {
		record("request body %q", body)
		if a := act(ctx, cfg, "request body"); a != pdk.Continue {
			return a
		}
		_ = ctx.ReplaceRequestBody(bytes.ToUpper(body))
		return pdk.Continue
	},
	OnResponseHeaders: func(ctx *pdk.Context, cfg *probeConfig) pdk.Action {
		record("response headers local=%t", ctx.RepliedLocally())
		return act(ctx, cfg, "response headers")
	},
	OnStreamingResponseBody: func(ctx *pdk.Context, cfg *probeConfig, chunk []byte, eos bool) []byte {
		record("response chunk %q eos=%t", chunk, eos)
		return bytes.ToUpper(chunk)
	},
	OnStreamDone: func(ctx *pdk.Context, cfg *probeConfig) {
		record("done tag=%s", cfg.Tag)
	},
}

func startProbe(t *testing.T, config string, opts ...pdktest.Option) *pdktest.Host {
	t.Helper()
	events = nil
	h := pdktest.New(t, probe.VMContext(), config, opts...)
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

func wantEvents(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(events, want) {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(events, "\n  "), strings.Join(want, "\n  "))
	}
	events = nil
}

func TestConfigureFailureNamesTheField(t *testing.T) {
	h := pdktest.New(t, probe.VMContext(), `{"_plugin_id_":"pid-7","tag":1,"_rules_":[{"_match_route_":["r"],"tga":"x"}]}`)
	if h.Start() {
		t.Fatal("configure accepted a bad configuration")
	}
	logs := h.GetErrorLogs()
	want := []string{
		"[probe] [pid-7] [nil] configure: tag: must be a string, not the number 1",
		`[probe] [pid-7] [nil] configure: _rules_[0].tga: unknown field (did you mean "tag"?)`,
		"[probe] [pid-7] [nil] configure failed: the configuration was rejected",
	}
	if !slices.Equal(logs, want) {
		t.Errorf("error logs:\n%s\nwant:\n%s", strings.Join(logs, "\n"), strings.Join(want, "\n"))
	}
}

func TestPluginWithoutParseTakesNoConfiguration(t *testing.T) {
	bare := pdk.Plugin[struct{}]{Name: "bare"}
	if h := pdktest.New(t, bare.VMContext(), ``); !h.Start() {
		t.Error("empty configuration refused")
	}
	h := pdktest.New(t, bare.VMContext(), `{"x":1}`)
	if h.Start() {
		t.Error("configuration accepted by a plugin without Parse")
	}
	if logs := h.GetErrorLogs(); len(logs) == 0 || !strings.Contains(logs[0], "this plugin takes no configuration") {
		t.Errorf("error logs %q", logs)
	}
}

func TestRulesPickTheConfigurationPerRequest(t *testing.T) {
	h := startProbe(t, `{"tag":"global","_rules_":[
		{"_match_route_":["chat"],"tag":"route"},
		{"_match_domain_":["*.example.com"],"tag":"domain"},
		{"_match_service_":["llm.dns:443"],"tag":"service"}]}`)
	run := func(host string) string {
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, pdktest.RequestHeaders(host, "/v1/chat/completions"), true)
		v, _ := headerValue(h.GetCurrentRequestHeaders(id), "x-tag")
		return v
	}
	if got := run("api.example.com:443"); got != "domain" {
		t.Errorf("domain rule: x-tag %q", got)
	}
	if got := run("other.org"); got != "global" {
		t.Errorf("no rule: x-tag %q", got)
	}
	if err := h.SetProperty([]string{"cluster_name"}, []byte("outbound|443||llm.dns")); err != nil {
		t.Fatal(err)
	}
	if got := run("other.org"); got != "service" {
		t.Errorf("service rule: x-tag %q", got)
	}
	if err := h.SetProperty([]string{"route_name"}, []byte("chat")); err != nil {
		t.Fatal(err)
	}
	if got := run("api.example.com"); got != "route" {
		t.Errorf("route rule listed first wins over the domain rule: x-tag %q", got)
	}
}

func TestNoMatchingConfigurationMeansNoCallbacks(t *testing.T) {
	h := startProbe(t, `{"_rules_":[{"_match_domain_":["only.example.com"],"tag":"a"}]}`)
	id := h.InitializeHttpContext()
	if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("other.org", "/"), false); a != types.ActionContinue {
		t.Errorf("headers: %v", a)
	}
	if a := h.CallOnRequestBody(id, []byte("x"), false); a != types.ActionContinue {
		t.Errorf("body is not held for an inactive plugin: %v", a)
	}
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200"), false)
	h.CallOnResponseBody(id, []byte("y"), true)
	h.CompleteHttpContext(id)
	wantEvents(t)
}

func TestBufferedBodyIsDeliveredOnceWhole(t *testing.T) {
	h := startProbe(t, `{"tag":"t"}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/p"), false)
	for i, chunk := range []string{"ab", "cd"} {
		if a := h.CallOnRequestBody(id, []byte(chunk), false); a != types.ActionPause {
			t.Errorf("chunk %d: %v, want Pause until end of stream", i, a)
		}
	}
	if a := h.CallOnRequestBody(id, []byte("ef"), true); a != types.ActionContinue {
		t.Errorf("last chunk: %v", a)
	}
	if got := string(h.GetCurrentRequestBody(id)); got != "ABCDEF" {
		t.Errorf("body sent on %q", got)
	}
	wantEvents(t, `request headers tag=t path=/p`, `request body "abcdef"`)
}

func TestTrailersCompleteABufferedBody(t *testing.T) {
	h := startProbe(t, `{"tag":"t"}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/p"), false)
	h.CallOnRequestBody(id, []byte("ab"), false)
	if a := h.CallOnRequestTrailers(id, pdktest.Headers("x-checksum", "1")); a != types.ActionContinue {
		t.Errorf("trailers: %v", a)
	}
	if got := string(h.GetCurrentRequestBody(id)); got != "AB" {
		t.Errorf("body %q", got)
	}
	wantEvents(t, `request headers tag=t path=/p`, `request body "ab"`)
}

func TestStreamingBodyReplacesEveryChunk(t *testing.T) {
	h := startProbe(t, `{"tag":"t"}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/p"), true)
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "text/event-stream"), false)
	for i, c := range []string{"data: a\n\n", "data: b\n\n"} {
		if a := h.CallOnResponseBody(id, []byte(c), i == 1); a != types.ActionContinue {
			t.Errorf("chunk %d: %v", i, a)
		}
		if got := string(h.GetCurrentResponseBody(id)); got != strings.ToUpper(c) {
			t.Errorf("chunk %d sent on as %q", i, got)
		}
	}
	h.CompleteHttpContext(id)
	wantEvents(t, `request headers tag=t path=/p`, `response headers local=false`,
		`response chunk "data: a\n\n" eos=false`, `response chunk "data: b\n\n" eos=true`, `done tag=t`)
}

func TestBinaryAndWebsocketBodiesAreNotRead(t *testing.T) {
	cases := []struct {
		name     string
		req      [][2]string
		resp     [][2]string
		wantBody []string
	}{
		{"octet-stream request", pdktest.Headers(":authority", "a", ":path", "/", "content-type", "application/octet-stream"), nil, nil},
		{"grpc request", pdktest.Headers(":authority", "a", ":path", "/", "content-type", "application/grpc"), nil, nil},
		{"compressed request", pdktest.Headers(":authority", "a", ":path", "/", "content-encoding", "gzip"), nil, nil},
		{"websocket", pdktest.Headers(":authority", "a", ":path", "/", "connection", "Upgrade", "upgrade", "websocket"), pdktest.Headers(":status", "101"), nil},
		{"compressed response", pdktest.Headers(":authority", "a", ":path", "/"), pdktest.Headers(":status", "200", "content-encoding", "br"), []string{`request body "x"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startProbe(t, `{}`)
			id := h.InitializeHttpContext()
			h.CallOnRequestHeaders(id, tc.req, false)
			if a := h.CallOnRequestBody(id, []byte("x"), true); a != types.ActionContinue {
				t.Errorf("request body: %v", a)
			}
			resp := tc.resp
			if resp == nil {
				resp = pdktest.Headers(":status", "200")
			}
			h.CallOnResponseHeaders(id, resp, false)
			h.CallOnResponseBody(id, []byte("y"), true)
			var bodies []string
			for _, e := range events {
				if strings.Contains(e, "body") || strings.Contains(e, "chunk") {
					bodies = append(bodies, e)
				}
			}
			want := tc.wantBody
			if tc.resp == nil {
				want = append(want, `response chunk "y" eos=true`)
			}
			if !slices.Equal(bodies, want) {
				t.Errorf("body callbacks %q, want %q", bodies, want)
			}
		})
	}
}

func TestPanicsFailOpenAndAreLogged(t *testing.T) {
	h := startProbe(t, `{"tag":"t","panic_at":"request headers"}`)
	id := h.InitializeHttpContext()
	if a := h.CallOnRequestHeaders(id, append(pdktest.RequestHeaders("a.org", "/"), [2]string{"x-request-id", "req-1"}), true); a != types.ActionContinue {
		t.Errorf("action %v, want Continue", a)
	}
	logs := strings.Join(h.GetErrorLogs(), "\n")
	if !strings.Contains(logs, "[probe] [nil] [req-1] recovered from panic in request headers: boom in request headers") {
		t.Errorf("error logs:\n%s", logs)
	}
}

func TestLocalReplyRunsThroughOwnResponseCallbacks(t *testing.T) {
	h := startProbe(t, `{"tag":"t","reply_at":"request body"}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), false)
	if a := h.CallOnRequestBody(id, []byte(`{}`), true); a != types.ActionPause {
		t.Errorf("action after a reply %v, want Pause", a)
	}
	r := h.GetSentLocalResponse(id)
	if r == nil {
		t.Fatal("no local reply")
	}
	if r.StatusCode != 403 || r.StatusCodeDetail != "probe.denied" ||
		string(r.Data) != `{"error":{"message":"denied at request body","type":"invalid_request_error","code":"probe.denied"}}`+"\n" {
		t.Errorf("reply %d %q %q", r.StatusCode, r.StatusCodeDetail, r.Data)
	}
	if ct, _ := headerValue(r.Headers, "content-type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "403"), false)
	wantEvents(t, `request headers tag=t path=/`, `request body "{}"`, `response headers local=true`)
}

func TestRequestIDIsCopiedAndPrefixesLogs(t *testing.T) {
	h := startProbe(t, `{"tag":"t","logs":1}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, append(pdktest.RequestHeaders("a.org", "/"), [2]string{"x-request-id", "abc"}), true)
	if v, err := h.GetProperty([]string{"x_request_id"}); err != nil || string(v) != "abc" {
		t.Errorf("x_request_id = %q, %v", v, err)
	}
	if logs := h.GetDebugLogs(); !slices.Contains(logs, "[probe] [nil] [abc] request headers line 0") {
		t.Errorf("debug logs %q", logs)
	}
}

func TestLogLevelIsAskedOncePerCallback(t *testing.T) {
	h := startProbe(t, `{"tag":"t","logs":5}`, pdktest.WithLogLevel(pdk.LevelInfo))
	base := h.LogLevelQueries()
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), false)
	if n := h.LogLevelQueries() - base; n != 1 {
		t.Errorf("%d queries for one callback with 5 log lines, want 1", n)
	}
	if logs := h.GetDebugLogs(); len(logs) != 0 {
		t.Errorf("debug lines written at info level: %q", logs)
	}
	h.SetLogLevel(pdk.LevelDebug)
	h.CallOnRequestBody(id, []byte("x"), true)
	if n := h.LogLevelQueries() - base; n != 2 {
		t.Errorf("%d queries after two callbacks, want 2", n)
	}
	if logs := h.GetDebugLogs(); len(logs) != 5 {
		t.Errorf("the host lowered its level: want the 5 debug lines of the next callback, got %q", logs)
	}
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200"), false)
	h.SetLogLevel(pdk.LevelError)
	h.CallOnResponseBody(id, []byte("x"), true) // logs nothing: not asked
	if n := h.LogLevelQueries() - base; n != 3 {
		t.Errorf("%d queries, want 3 (a callback that logs nothing does not ask)", n)
	}
}

func headerValue(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// In the request-headers callback RequestHeader answers from the headers
// the kit read, and sees the plugin's own changes made through the Context.
func TestRequestHeaderSeesChangesInRequestHeaders(t *testing.T) {
	var got []string
	p := pdk.Plugin[struct{}]{
		Name: "headers",
		OnRequestHeaders: func(ctx *pdk.Context, _ struct{}) pdk.Action {
			v, ok := ctx.RequestHeader("X-Consumer")
			got = append(got, fmt.Sprintf("%s %t", v, ok))
			_ = ctx.SetRequestHeader("x-consumer", "bob")
			v, ok = ctx.RequestHeader("x-consumer")
			got = append(got, fmt.Sprintf("%s %t", v, ok))
			_ = ctx.RemoveRequestHeader("x-consumer")
			_, ok = ctx.RequestHeader("x-consumer")
			got = append(got, fmt.Sprint(ok))
			return pdk.Continue
		},
	}
	h := pdktest.New(t, p.VMContext(), ``)
	if !h.Start() {
		t.Fatal("configure failed")
	}
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, append(pdktest.RequestHeaders("a.org", "/"), [2]string{"x-consumer", "alice"}), true)
	if want := []string{"alice true", "bob true", "false"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
