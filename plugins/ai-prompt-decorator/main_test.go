package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// These tests run the plugin natively on the SDK's proxytest emulator; each
// case is a behaviour statement of shared/spec/plugins-B.md §6 (or one of
// the fixes listed in README.md). e2e_test.go runs it as wasm in the
// gateway.

var geoChina = []pdktest.Option{
	pdktest.WithProperty([]string{"geo-country"}, "China"),
	pdktest.WithProperty([]string{"geo-province"}, "Beijing"),
	pdktest.WithProperty([]string{"geo-city"}, "Beijing"),
	pdktest.WithProperty([]string{"geo-isp"}, "China Mobile"),
}

const geoConfig = `{
	"prepend": [{"role": "system", "content": "You are a helpful assistant from ${geo-country}."}],
	"append":  [{"role": "system", "content": "Please provide context about ${geo-city}."}]}`

func start(t *testing.T, config string, opts ...pdktest.Option) *pdktest.Host {
	t.Helper()
	h := pdktest.New(t, plugin.VMContext(), config, opts...)
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

// exchange is one request through the plugin.
type exchange struct {
	headersAction, bodyAction types.Action
	firstChunkAction          types.Action
	headers                   [][2]string // request headers after the plugin
	// body is the request body after the plugin. When the plugin does not
	// hold the first chunk, the emulator sends it on and body is the
	// second chunk only.
	body  string
	reply *reply // local reply, if any
}

type reply struct {
	status  uint32
	details string
	body    string
}

func send(t *testing.T, h *pdktest.Host, body string, extraHeaders ...string) exchange {
	t.Helper()
	id := h.InitializeHttpContext()
	hdrs := pdktest.RequestHeaders("llm.example.com", "/v1/chat/completions", append([]string{"content-length", "999"}, extraHeaders...)...)
	var x exchange
	x.headersAction = h.CallOnRequestHeaders(id, hdrs, false)
	x.headers = h.GetCurrentRequestHeaders(id)
	// Two chunks: the plugin must wait for the whole body.
	half := len(body) / 2
	x.firstChunkAction = h.CallOnRequestBody(id, []byte(body[:half]), false)
	x.bodyAction = h.CallOnRequestBody(id, []byte(body[half:]), true)
	x.body = string(h.GetCurrentRequestBody(id))
	if r := h.GetSentLocalResponse(id); r != nil {
		x.reply = &reply{status: r.StatusCode, details: r.StatusCodeDetail, body: string(r.Data)}
	}
	h.CompleteHttpContext(id)
	return x
}

type msg struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

func messagesOf(t *testing.T, body string) []msg {
	t.Helper()
	var req struct {
		Messages []msg `json:"messages"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return req.Messages
}

func wantMessages(t *testing.T, body string, want ...msg) {
	t.Helper()
	if got := messagesOf(t, body); !reflect.DeepEqual(got, want) {
		t.Errorf("messages:\n got %+v\nwant %+v\nbody %s", got, want, body)
	}
}

func TestConfiguration(t *testing.T) {
	cases := []struct {
		name   string
		config string
		errors []string // nil: accepted
	}{
		{"prepend and append with geo placeholders", geoConfig, nil},
		{"prepend only, explicit empty append", `{"prepend":[{"role":"system","content":"x"}],"append":[]}`, nil},
		{"empty prepend and append", `{"prepend":[],"append":[]}`, nil},
		{"empty object", `{}`, nil},
		{"zero-byte configuration (Higress fails it)", ``, nil},
		{"replace rules", `{"replace":[{"on_role":"system","pattern":"OpenClaw","replacement":"agent"},{"pattern":"secret-\\d+","replacement":"[REDACTED]","regex":true}]}`, nil},
		{"per-route rules", `{"prepend":[{"role":"system","content":"g"}],"_rules_":[{"_match_route_":["r"],"append":[{"role":"user","content":"u"}]}]}`, nil},
		{"empty pattern", `{"replace":[{"pattern":"","replacement":"x"}]}`, []string{"replace[0].pattern: must not be empty"}},
		{"invalid regex", `{"replace":[{"pattern":"ok"},{"pattern":"[unterminated","regex":true}]}`,
			[]string{"replace[1].pattern: is not a valid regex: error parsing regexp: missing closing ]: `[unterminated`"}},
		{"empty role", `{"prepend":[{"content":"x"}],"append":[{"role":" ","content":"y"}]}`,
			[]string{`prepend[0].role: must not be empty (e.g. "system" or "user")`, `append[0].role: must not be empty (e.g. "system" or "user")`}},
		{"wrong types", `{"prepend":"hello","replace":[{"pattern":"a","regex":"yes"}]}`,
			[]string{"prepend: must be a list, not a string", "replace[0].regex: must be true or false, not a string"}},
		{"unknown field", `{"prepand":[]}`, []string{`prepand: unknown field (did you mean "prepend"?)`}},
		{"bad rule", `{"_rules_":[{"_match_domain_":["a.com"],"replace":[{"pattern":""}]}]}`, []string{"_rules_[0].replace[0].pattern: must not be empty"}},
		{"not JSON", `{"prepend": [`, []string{"not valid JSON: unexpected end of JSON input (at byte 13)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := pdktest.New(t, plugin.VMContext(), tc.config)
			ok := h.Start()
			if tc.errors == nil {
				if !ok {
					t.Fatalf("rejected:\n%s", strings.Join(h.GetErrorLogs(), "\n"))
				}
				return
			}
			if ok {
				t.Fatal("accepted")
			}
			var got []string
			for _, l := range h.GetErrorLogs() {
				if _, rest, found := strings.Cut(l, "configure: "); found {
					got = append(got, rest)
				}
			}
			if !reflect.DeepEqual(got, tc.errors) {
				t.Errorf("errors:\n %q\nwant\n %q", got, tc.errors)
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	id := h.InitializeHttpContext()
	hdrs := pdktest.RequestHeaders("a.org", "/v1/chat/completions", "content-length", "42")
	if a := h.CallOnRequestHeaders(id, hdrs, false); a != types.ActionContinue {
		t.Errorf("action %v, want Continue", a)
	}
	for _, hd := range h.GetCurrentRequestHeaders(id) {
		if hd[0] == "content-length" {
			t.Error("content-length kept although the body changes size")
		}
	}
	if v, err := h.GetProperty([]string{"clear_route_cache"}); err != nil || string(v) != "off" {
		t.Errorf("clear_route_cache = %q, %v (reroute must be disabled)", v, err)
	}
}

func TestGeoPrependAndAppend(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	x := send(t, h, `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, how are you?"}]}`)
	if x.firstChunkAction != types.ActionPause || x.bodyAction != types.ActionContinue || x.reply != nil {
		t.Fatalf("actions %v, %v, reply %+v: want Pause until the whole body, then Continue", x.firstChunkAction, x.bodyAction, x.reply)
	}
	wantMessages(t, x.body,
		msg{"system", "You are a helpful assistant from China."},
		msg{"user", "Hello, how are you?"},
		msg{"system", "Please provide context about Beijing."})
}

func TestPrependOnlyUsesEveryGeoVariable(t *testing.T) {
	h := start(t, `{"prepend":[{"role":"system","content":"You are located in ${geo-province}, ${geo-country} (${geo-isp}, ${geo-city})."}],"append":[]}`,
		pdktest.WithProperty([]string{"geo-country"}, "China"), pdktest.WithProperty([]string{"geo-province"}, "Shanghai"),
		pdktest.WithProperty([]string{"geo-city"}, "Shanghai"), pdktest.WithProperty([]string{"geo-isp"}, "China Telecom"))
	x := send(t, h, `{"messages":[{"role":"user","content":"hi"}]}`)
	wantMessages(t, x.body,
		msg{"system", "You are located in Shanghai, China (China Telecom, Shanghai)."},
		msg{"user", "hi"})
}

func TestOrderIsPreservedWithSeveralMessages(t *testing.T) {
	h := start(t, geoConfig, pdktest.WithProperty([]string{"geo-country"}, "USA"), pdktest.WithProperty([]string{"geo-city"}, "San Francisco"))
	x := send(t, h, `{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u1"},{"role":"assistant","content":"a1"}]}`)
	wantMessages(t, x.body,
		msg{"system", "You are a helpful assistant from USA."},
		msg{"system", "s"}, msg{"user", "u1"}, msg{"assistant", "a1"},
		msg{"system", "Please provide context about San Francisco."})
}

func TestMissingGeoPropertyDoesNotAbortDecoration(t *testing.T) {
	h := start(t, geoConfig, pdktest.WithProperty([]string{"geo-country"}, "France"))
	x := send(t, h, `{"messages":[{"role":"user","content":"hi"}]}`)
	wantMessages(t, x.body,
		msg{"system", "You are a helpful assistant from France."},
		msg{"user", "hi"},
		msg{"system", "Please provide context about ."})
}

func TestGeoIsNotAppliedToClientMessages(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	x := send(t, h, `{"messages":[{"role":"user","content":"where is ${geo-city}?"}]}`)
	if got := messagesOf(t, x.body)[1].Content; got != "where is ${geo-city}?" {
		t.Errorf("client message changed: %q", got)
	}
}

func TestConfigurationIsNotMutatedAcrossRequests(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	send(t, h, `{"messages":[]}`)
	if err := h.SetProperty([]string{"geo-country"}, []byte("Japan")); err != nil {
		t.Fatal(err)
	}
	x := send(t, h, `{"messages":[]}`)
	wantMessages(t, x.body,
		msg{"system", "You are a helpful assistant from Japan."},
		msg{"system", "Please provide context about Beijing."})
}

func TestOtherFieldsArePreservedByteForByte(t *testing.T) {
	h := start(t, `{"append":[{"role":"user","content":"bye"}],"replace":[{"pattern":"a","replacement":"b"}]}`)
	body := `{"model":"gpt-4o",  "stream":true,"temperature":0.70,"messages":[{"role":"assistant","content":"aaa","tool_calls":[{"id":"t1"}],"name":"n"},{"role":"user","content":"x"}],"n":1}`
	x := send(t, h, body)
	want := `{"model":"gpt-4o",  "stream":true,"temperature":0.70,"messages":[{"role":"assistant","content":"bbb","tool_calls":[{"id":"t1"}],"name":"n"},{"role":"user","content":"x"},{"role":"user","content":"bye"}],"n":1}`
	if x.body != want {
		t.Errorf("body\n got %s\nwant %s", x.body, want)
	}
}

func TestBodyWithoutMessagesIsUnchanged(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	body := `{"model":"text-embedding-3-small","input":"hello"}`
	x := send(t, h, body)
	if x.bodyAction != types.ActionContinue || x.body != body || x.reply != nil {
		t.Errorf("action %v body %s reply %+v", x.bodyAction, x.body, x.reply)
	}
}

func TestIdleConfigurationLeavesTheRequestAlone(t *testing.T) {
	for _, cfg := range []string{`{"prepend":[],"append":[]}`, `{}`, ``} {
		h := start(t, cfg)
		x := send(t, h, `not even json`)
		if x.firstChunkAction != types.ActionContinue || x.bodyAction != types.ActionContinue || x.body != "en json" || x.reply != nil {
			t.Errorf("config %q: body not streamed through: actions %v, %v, body %q, reply %+v", cfg, x.firstChunkAction, x.bodyAction, x.body, x.reply)
		}
		if _, ok := headerValue(x.headers, "content-length"); !ok {
			t.Errorf("config %q: content-length removed although the body is untouched", cfg)
		}
	}
}

func TestBadBodiesAreAnswered400(t *testing.T) {
	cases := []struct {
		name, body, details, message string
	}{
		{"malformed JSON", `{"messages":[{"role":"user",}]}`, detailInvalidJSON,
			"ai-prompt-decorator: the request body is not valid JSON: invalid character '}' looking for beginning of object key string at byte 29"},
		{"not JSON at all", `hello`, detailInvalidJSON,
			"ai-prompt-decorator: the request body is not valid JSON: invalid character 'h' looking for beginning of value at byte 1"},
		{"JSON but not an object", `[1,2]`, detailInvalidJSON,
			"ai-prompt-decorator: the request body must be a JSON object with a messages list"},
		{"messages not a list", `{"messages":"hi"}`, detailInvalidMessages,
			"ai-prompt-decorator: messages must be a list of message objects"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, geoConfig, geoChina...)
			x := send(t, h, tc.body)
			if x.reply == nil {
				t.Fatalf("no local reply; action %v body %s", x.bodyAction, x.body)
			}
			if x.reply.status != 400 || x.reply.details != tc.details {
				t.Errorf("reply %d %q", x.reply.status, x.reply.details)
			}
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if err := json.Unmarshal([]byte(x.reply.body), &e); err != nil {
				t.Fatalf("reply body %q: %v", x.reply.body, err)
			}
			if e.Error.Message != tc.message || e.Error.Type != "invalid_request_error" || e.Error.Code != tc.details {
				t.Errorf("error %+v\nwant message %q", e.Error, tc.message)
			}
		})
	}
}

func TestNonJSONContentTypeIsNotRead(t *testing.T) {
	h := start(t, geoConfig, geoChina...)
	body := "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nRIFF\r\n--b--"
	x := send(t, h, body, "content-type", "multipart/form-data; boundary=b")
	if x.reply != nil || x.firstChunkAction != types.ActionContinue || x.bodyAction != types.ActionContinue || x.body != body[len(body)/2:] {
		t.Errorf("multipart body not streamed through: actions %v, %v, reply %+v", x.firstChunkAction, x.bodyAction, x.reply)
	}
}

func TestReplaceRules(t *testing.T) {
	cfg := `{
		"prepend": [{"role": "system", "content": "You are running inside OpenClaw."}],
		"replace": [
			{"on_role": "system", "pattern": "OpenClaw", "replacement": "agent"},
			{"pattern": "secret-\\d+", "replacement": "[REDACTED]", "regex": true}]}`
	h := start(t, cfg)
	x := send(t, h, `{"messages":[{"role":"user","content":"Show OpenClaw secret-1234 to the user"}]}`)
	wantMessages(t, x.body,
		msg{"system", "You are running inside agent."},
		msg{"user", "Show OpenClaw [REDACTED] to the user"})
}

func TestRuleWithoutRoleAppliesEverywhere(t *testing.T) {
	h := start(t, `{"prepend":[{"role":"system","content":"OpenClaw p"}],"append":[{"role":"user","content":"OpenClaw a"}],
		"replace":[{"pattern":"OpenClaw","replacement":"agent"}]}`)
	x := send(t, h, `{"messages":[{"role":"user","content":"OpenClaw o"}]}`)
	wantMessages(t, x.body, msg{"system", "agent p"}, msg{"user", "agent o"}, msg{"user", "agent a"})
}

func TestMultimodalMessagesAreLeftAlone(t *testing.T) {
	h := start(t, `{"prepend":[{"role":"system","content":"OpenClaw p"}],"append":[{"role":"user","content":"OpenClaw a"}],
		"replace":[{"pattern":"OpenClaw","replacement":"agent"}]}`)
	original := `{"role":"user","content":[{"type":"text","text":"OpenClaw"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}`
	x := send(t, h, `{"messages":[`+original+`,{"role":"tool","content":null}]}`)
	want := `{"messages":[{"role":"system","content":"agent p"},` + original + `,{"role":"tool","content":null},{"role":"user","content":"agent a"}]}`
	if x.body != want {
		t.Errorf("body\n got %s\nwant %s", x.body, want)
	}
}

func TestRewrite(t *testing.T) {
	compile := func(t *testing.T, rules string) []replaceRule {
		t.Helper()
		c, err := pdk.DecodeConfig[config]([]byte(`{"replace":` + rules + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return c.Replace
	}
	cases := []struct {
		name, rules, in, want string
	}{
		{"rules apply in order", `[{"pattern":"foo","replacement":"bar"},{"pattern":"bar","replacement":"baz"}]`,
			`{"role":"user","content":"foo"}`, `{"role":"user","content":"baz"}`},
		{"on_role gates: system yes", `[{"on_role":"system","pattern":"x","replacement":"y"}]`,
			`{"role":"system","content":"x"}`, `{"role":"system","content":"y"}`},
		{"on_role gates: user no", `[{"on_role":"system","pattern":"x","replacement":"y"}]`,
			`{"role":"user","content":"x"}`, `{"role":"user","content":"x"}`},
		{"regex capture expansion", `[{"pattern":"hello (\\w+)","replacement":"hi $1","regex":true}]`,
			`{"role":"user","content":"hello world"}`, `{"role":"user","content":"hi world"}`},
		{"literal pattern is not a regex", `[{"pattern":"a.c","replacement":"X"}]`,
			`{"role":"user","content":"abc a.c"}`, `{"role":"user","content":"abc X"}`},
		{"unchanged message keeps its bytes", `[{"pattern":"zzz","replacement":"y"}]`,
			`{ "role" : "user", "content":"a\u00e9" }`, `{ "role" : "user", "content":"a\u00e9" }`},
		{"special characters are escaped", `[{"pattern":"Q","replacement":"\"quoted\"\n"}]`,
			`{"role":"user","content":"Q"}`, `{"role":"user","content":"\"quoted\"\n"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(rewrite(compile(t, tc.rules), []byte(tc.in))); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPerRouteRules(t *testing.T) {
	h := start(t, `{"prepend":[{"role":"system","content":"global"}],
		"_rules_":[{"_match_route_":["kids"],"prepend":[{"role":"system","content":"Answer for children."}]}]}`)
	x := send(t, h, `{"messages":[]}`)
	wantMessages(t, x.body, msg{"system", "global"})
	if err := h.SetProperty([]string{"route_name"}, []byte("kids")); err != nil {
		t.Fatal(err)
	}
	x = send(t, h, `{"messages":[]}`)
	wantMessages(t, x.body, msg{"system", "Answer for children."})
}

func headerValue(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}
