package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// These tests run the plugin natively on the SDK's proxytest emulator; each
// case is a behaviour statement or test-derived acceptance criterion of
// shared/spec/plugins-C.md §2 (numbered §2.6.N), or one of the fixes listed
// in README.md. e2e_test.go runs it as wasm in the gateway.

const chatConfig = `{"templates":[
	{"name":"developer-chat","template":{"model":"gpt-3.5-turbo","messages":[
		{"role":"system","content":"You are a {{program}} expert, in {{language}} programming language."},
		{"role":"user","content":"Write me a {{program}} program."}]}},
	{"name":"greeting","template":"Hello {{name}}, welcome to {{company}}!"},
	{"name":"pure","template":"{{greeting}} {{name}}, {{message}}"},
	{"name":"complex","template":{"model":"{{model}}","temperature":0.2,"messages":[
		{"role":"system","content":"You are {{persona}}. Answer in {{lang}}."},
		{"role":"user","content":"{{question}}"}]}}]}`

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

// rendered sends body and requires it to be replaced (Continue, no reply,
// valid JSON); it returns the new body.
func rendered(t *testing.T, h *pdktest.Host, body string) string {
	t.Helper()
	x := send(t, h, body)
	if x.firstChunkAction != types.ActionPause || x.bodyAction != types.ActionContinue || x.reply != nil {
		t.Fatalf("actions %v, %v, reply %+v: want Pause until the whole body, then Continue", x.firstChunkAction, x.bodyAction, x.reply)
	}
	if !json.Valid([]byte(x.body)) {
		t.Errorf("rendered body is not JSON: %s", x.body)
	}
	return x.body
}

func headerValue(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// §2.6.1–4: templates are stored as their raw JSON text, string templates
// with their quotes and escapes.
func TestTemplatesAreStoredAsRawJSON(t *testing.T) {
	cases := []struct {
		name   string
		config string
		want   map[string]string
	}{
		{"two templates (§2.6.1)", `{"templates":[{"name":"greeting","template":"Hello {{name}}, welcome to {{company}}!"},{"name":"summary","template":"Summarize {{text}} in {{n}} words."}]}`,
			map[string]string{"greeting": `"Hello {{name}}, welcome to {{company}}!"`, "summary": `"Summarize {{text}} in {{n}} words."`}},
		{"single template (§2.6.2)", `{"templates":[{"name":"one","template":"Hi {{x}}"}]}`,
			map[string]string{"one": `"Hi {{x}}"`}},
		{"empty list (§2.6.3)", `{"templates":[]}`, map[string]string{}},
		{"no templates key", `{}`, map[string]string{}},
		{"newlines keep their escapes (§2.6.4)", `{"templates":[{"name":"multi","template":"Line 1: {{a}}\nLine 2: {{b}}"}]}`,
			map[string]string{"multi": `"Line 1: {{a}}\nLine 2: {{b}}"`}},
		{"object template keeps its text", `{"templates":[{"name":"o","template":{"model":"m",  "messages":[]}}]}`,
			map[string]string{"o": `{"model":"m",  "messages":[]}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pdk.DecodeConfig[config]([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.byName, tc.want) {
				t.Errorf("stored %q, want %q", cfg.byName, tc.want)
			}
			if h := pdktest.New(t, plugin.VMContext(), tc.config); !h.Start() {
				t.Errorf("configure failed: %s", h.GetErrorLogs())
			}
		})
	}
}

func TestConfigurationErrors(t *testing.T) {
	cases := []struct {
		name   string
		config string
		errors []string // nil: accepted
	}{
		{"zero-byte configuration", ``, nil},
		{"per-route rules", `{"templates":[{"name":"a","template":"x"}],"_rules_":[{"_match_route_":["r"],"templates":[{"name":"b","template":"y"}]}]}`, nil},
		{"empty name", `{"templates":[{"name":"","template":"x"},{"template":"y"}]}`,
			[]string{`templates[0].name: must not be empty (clients send it as "template")`, `templates[1].name: must not be empty (clients send it as "template")`}},
		{"missing template", `{"templates":[{"name":"a"},{"name":"b","template":null}]}`,
			[]string{`templates[0].template: must be set (normally an object such as {"model": …, "messages": […]})`, `templates[1].template: must be set (normally an object such as {"model": …, "messages": […]})`}},
		{"duplicate name", `{"templates":[{"name":"a","template":"x"},{"name":"a","template":"y"}]}`,
			[]string{`templates[1].name: "a" is already the name of templates[0] (names must be unique)`}},
		{"wrong types", `{"templates":{"name":"a"}}`, []string{"templates: must be a list, not an object"}},
		{"name not a string", `{"templates":[{"name":1,"template":"x"}]}`, []string{"templates[0].name: must be a string, not the number 1"}},
		{"unknown field", `{"template":[]}`, []string{`template: unknown field (did you mean "templates"?)`}},
		{"unknown field in a template", `{"templates":[{"name":"a","tempalte":"x"}]}`, []string{`templates[0].tempalte: unknown field (did you mean "template"?)`}},
		{"bad rule", `{"_rules_":[{"_match_domain_":["a.com"],"templates":[{"name":"","template":"x"}]}]}`,
			[]string{`_rules_[0].templates[0].name: must not be empty (clients send it as "template")`}},
		{"not JSON", `{"templates": [`, []string{"not valid JSON: unexpected end of JSON input (at byte 15)"}},
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

// §2.3 request headers, §2.6.5: Continue whatever template-enable says.
func TestRequestHeaders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		extra    []string
		readBody bool
	}{
		{"template-enable absent", nil, true},
		{"template-enable: true", []string{"template-enable", "true"}, true},
		{"template-enable: false", []string{"template-enable", "false"}, false},
		{"template-enable: False is not false", []string{"template-enable", "False"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, chatConfig)
			x := send(t, h, `{"template":"greeting","properties":{"name":"A","company":"B"}}`, tc.extra...)
			if x.headersAction != types.ActionContinue {
				t.Errorf("headers action %v, want Continue", x.headersAction)
			}
			if _, ok := headerValue(x.headers, headerTemplateEnable); ok {
				t.Error("template-enable forwarded upstream")
			}
			_, hasLength := headerValue(x.headers, "content-length")
			if tc.readBody {
				if hasLength {
					t.Error("content-length kept although the body changes size")
				}
				if x.body != `"Hello A, welcome to B!"` {
					t.Errorf("body %s, want the rendered template", x.body)
				}
			} else {
				if !hasLength {
					t.Error("content-length removed although the body is untouched")
				}
				if x.firstChunkAction != types.ActionContinue || x.bodyAction != types.ActionContinue || x.reply != nil {
					t.Errorf("body not streamed through: actions %v, %v, reply %+v", x.firstChunkAction, x.bodyAction, x.reply)
				}
			}
			if v, err := h.GetProperty([]string{"clear_route_cache"}); err != nil || string(v) != "off" {
				t.Errorf("clear_route_cache = %q, %v (reroute must be disabled)", v, err)
			}
		})
	}
}

// §2.3 example, §2.6.6: the upstream gets the template with the
// placeholders filled in.
func TestDeveloperChatExample(t *testing.T) {
	h := start(t, chatConfig)
	got := rendered(t, h, `{"template": "developer-chat", "properties": {"program": "quick sort", "language": "python"}}`)
	want := `{"model":"gpt-3.5-turbo","messages":[
		{"role":"system","content":"You are a quick sort expert, in python programming language."},
		{"role":"user","content":"Write me a quick sort program."}]}`
	if got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

// §2.6.7: four properties, substitution anywhere including model; other
// template values keep their types.
func TestComplexTemplate(t *testing.T) {
	h := start(t, chatConfig)
	got := rendered(t, h, `{"template":"complex","properties":{"model":"gpt-4o","persona":"a tutor","lang":"French","question":"What is 2+2?"}}`)
	var req struct {
		Model       string
		Temperature float64
		Messages    []struct{ Role, Content string }
	}
	if err := json.Unmarshal([]byte(got), &req); err != nil {
		t.Fatal(err)
	}
	if req.Model != "gpt-4o" || req.Temperature != 0.2 || len(req.Messages) != 2 ||
		req.Messages[0].Content != "You are a tutor. Answer in French." || req.Messages[1].Content != "What is 2+2?" {
		t.Errorf("rendered %s", got)
	}
}

// §2.3 body step 1, §2.6.8–9: only bodies with both template and
// properties are touched.
func TestNonTemplateBodiesAreUnchanged(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"no template (§2.6.8)", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"properties":{"a":1}}`},
		{"template without properties (§2.6.9)", `{"template":"greeting","name":"x"}`},
		{"JSON but not an object", `["template","properties"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, chatConfig)
			x := send(t, h, tc.body)
			if x.bodyAction != types.ActionContinue || x.reply != nil || x.body != tc.body {
				t.Errorf("action %v reply %+v body %s", x.bodyAction, x.reply, x.body)
			}
		})
	}
}

// §2.6.10: placeholders without a property stay as they are.
func TestMissingPropertiesStayLiteral(t *testing.T) {
	h := start(t, chatConfig)
	if got := rendered(t, h, `{"template":"greeting","properties":{"name":"Alice"}}`); got != `"Hello Alice, welcome to {{company}}!"` {
		t.Errorf("body %s", got)
	}
}

// §2.3 body step 3, §2.6.11: substitution and value rendering.
func TestRender(t *testing.T) {
	cases := []struct{ name, template, props, want string }{
		{"strings (§2.6.11)", `"Hello {{name}}, welcome to {{company}}!"`, `{"name":"Alice","company":"TechCorp"}`, `"Hello Alice, welcome to TechCorp!"`},
		{"three placeholders (§2.6.11)", `"{{greeting}} {{name}}, {{message}}"`, `{"greeting":"Hello","name":"World","message":"welcome!"}`, `"Hello World, welcome!"`},
		{"repeated placeholder", `"{{a}}{{a}}"`, `{"a":"x"}`, `"xx"`},
		{"numbers and booleans as literals", `"{{n}} {{f}} {{b}}"`, `{"n":42,"f":1.50,"b":true}`, `"42 1.50 true"`},
		{"null is empty", `"[{{x}}]"`, `{"x":null}`, `"[]"`},
		{"objects and lists as escaped JSON", `"{{o}} {{l}}"`, `{"o":{"k":"v"},"l":[1,"two"]}`, `"{\"k\":\"v\"} [1,\"two\"]"`},
		{"quotes, backslashes and newlines are escaped", `"say {{q}}"`, `{"q":"\"hi\"\\ \nbye"}`, `"say \"hi\"\\ \nbye"`},
		{"values are not expanded again", `"{{a}} {{b}}"`, `{"a":"{{b}}","b":"B"}`, `"{{b}} B"`},
		{"empty properties", `"{{a}}"`, `{}`, `"{{a}}"`},
		{"key needing escapes", `"{{a\"b}}"`, `{"a\"b":"ok"}`, `"ok"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := render(tc.template, gjsonParse(tc.props))
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}

// Values with quotes and newlines still give a valid body (Higress sends
// invalid JSON).
func TestSpecialCharactersGiveValidJSON(t *testing.T) {
	h := start(t, chatConfig)
	got := rendered(t, h, `{"template":"developer-chat","properties":{"program":"\"quoted\"\nsort","language":"C\\C++"}}`)
	var req struct{ Messages []struct{ Content string } }
	if err := json.Unmarshal([]byte(got), &req); err != nil {
		t.Fatal(err)
	}
	if want := "You are a \"quoted\"\nsort expert, in C\\C++ programming language."; req.Messages[0].Content != want {
		t.Errorf("content %q, want %q", req.Messages[0].Content, want)
	}
}

func TestBadBodiesAreAnswered400(t *testing.T) {
	cases := []struct {
		name, body, details, message string
	}{
		{"malformed JSON", `{"template":"greeting",}`, detailInvalidJSON,
			"ai-prompt-template: the request body is not valid JSON: invalid character '}' looking for beginning of object key string at byte 24"},
		{"not JSON at all", `hello`, detailInvalidJSON,
			"ai-prompt-template: the request body is not valid JSON: invalid character 'h' looking for beginning of value at byte 1"},
		{"unknown template (Higress sends an empty body)", `{"template":"nope","properties":{}}`, detailUnknownTemplate,
			`ai-prompt-template: unknown template "nope" (known: complex, developer-chat, greeting, pure)`},
		{"template not a string", `{"template":["greeting"],"properties":{}}`, detailInvalidTemplate,
			"ai-prompt-template: template must be the name of a template (a string), not a list"},
		{"properties not an object", `{"template":"greeting","properties":"name=Alice"}`, detailInvalidProperties,
			"ai-prompt-template: properties must be an object of variable values, not a string"},
		{"properties null", `{"template":"greeting","properties":null}`, detailInvalidProperties,
			"ai-prompt-template: properties must be an object of variable values, not null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, chatConfig)
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

func TestUnknownTemplateWithNoTemplatesConfigured(t *testing.T) {
	h := start(t, `{}`)
	x := send(t, h, `{"template":"a","properties":{}}`)
	if x.reply == nil || x.reply.status != 400 || !strings.Contains(x.reply.body, `unknown template \"a\" (known: none configured)`) {
		t.Errorf("reply %+v", x.reply)
	}
}

func TestNonJSONContentTypeIsNotRead(t *testing.T) {
	h := start(t, chatConfig)
	body := "--b\r\nContent-Disposition: form-data; name=\"template\"\r\n\r\ngreeting\r\n--b--"
	x := send(t, h, body, "content-type", "multipart/form-data; boundary=b")
	if x.reply != nil || x.firstChunkAction != types.ActionContinue || x.bodyAction != types.ActionContinue || x.body != body[len(body)/2:] {
		t.Errorf("multipart body not streamed through: actions %v, %v, reply %+v", x.firstChunkAction, x.bodyAction, x.reply)
	}
}

// §0.1: rules are stand-alone configurations, first match wins.
func TestPerRouteRules(t *testing.T) {
	h := start(t, `{"templates":[{"name":"t","template":"global {{x}}"}],
		"_rules_":[{"_match_route_":["kids"],"templates":[{"name":"t","template":"kids {{x}}"}]}]}`)
	if got := rendered(t, h, `{"template":"t","properties":{"x":"1"}}`); got != `"global 1"` {
		t.Errorf("global: %s", got)
	}
	if err := h.SetProperty([]string{"route_name"}, []byte("kids")); err != nil {
		t.Fatal(err)
	}
	if got := rendered(t, h, `{"template":"t","properties":{"x":"1"}}`); got != `"kids 1"` {
		t.Errorf("rule: %s", got)
	}
}

func TestConfigurationIsNotMutatedAcrossRequests(t *testing.T) {
	h := start(t, chatConfig)
	rendered(t, h, `{"template":"greeting","properties":{"name":"A","company":"B"}}`)
	if got := rendered(t, h, `{"template":"greeting","properties":{"name":"C"}}`); got != `"Hello C, welcome to {{company}}!"` {
		t.Errorf("second request: %s", got)
	}
}

func gjsonParse(s string) gjson.Result { return gjson.Parse(s) }

// FuzzRender checks that any properties object rendered into any valid
// template gives valid JSON (Higress can produce invalid bodies).
func FuzzRender(f *testing.F) {
	f.Add(`{"model":"{{m}}","messages":[{"role":"user","content":"{{q}} {{o}}"}]}`, `{"m":"gpt","q":"a\"b\\c\n","o":{"x":[1,null]}}`)
	f.Add(`"Hello {{name}}, welcome to {{company}}!"`, `{"name":"{{company}}","company":"</script>&"}`)
	f.Add(`{"{{k}}":"{{v}}"}`, `{"k":"\u0000\u2028","v":true,"":"e"}`)
	f.Fuzz(func(t *testing.T, template, props string) {
		if !json.Valid([]byte(template)) || !gjson.Valid(props) {
			return
		}
		p := gjson.Parse(props)
		if !p.IsObject() {
			return
		}
		if got := render(template, p); !json.Valid([]byte(got)) {
			t.Errorf("render(%s, %s) = %s: not JSON", template, props, got)
		}
	})
}
