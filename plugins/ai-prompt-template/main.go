// Command ai-prompt-template is a Proxy-Wasm plugin that expands a short
// request naming a server-side prompt template, plus variable values, into
// the full request body the template describes: every {{variable}} of the
// template is replaced by the value the client sent. See README.md; the
// behaviour is shared/spec/plugins-C.md §2, with the fixes listed there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-prompt-template"

// Response-code details (and error codes) of the plugin's local replies.
const (
	detailInvalidJSON       = pluginName + ".invalid_json"
	detailInvalidTemplate   = pluginName + ".invalid_template"
	detailUnknownTemplate   = pluginName + ".unknown_template"
	detailInvalidProperties = pluginName + ".invalid_properties"
)

// headerTemplateEnable switches the plugin off for one request when it is
// exactly "false".
const headerTemplateEnable = "template-enable"

// template is one entry of templates.
type template struct {
	Name string `json:"name"`
	// Template is the template's JSON text exactly as written in the
	// configuration (a string template keeps its quotes and escapes).
	Template json.RawMessage `json:"template"`
}

// config is the plugin configuration (Higress's field names).
type config struct {
	Templates []template `json:"templates"`

	byName map[string]string // name → raw JSON text of the template
}

// Validate checks the templates and indexes them by name.
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	c.byName = make(map[string]string, len(c.Templates))
	first := make(map[string]int, len(c.Templates))
	for i, t := range c.Templates {
		switch {
		case strings.TrimSpace(t.Name) == "":
			errs = append(errs, pdk.Errorf(fmt.Sprintf("templates[%d].name", i), "must not be empty (clients send it as \"template\")"))
		case hasIndex(first, t.Name):
			errs = append(errs, pdk.Errorf(fmt.Sprintf("templates[%d].name", i), "%q is already the name of templates[%d] (names must be unique)", t.Name, first[t.Name]))
		default:
			first[t.Name] = i
		}
		raw := strings.TrimSpace(string(t.Template))
		if raw == "" || raw == "null" {
			errs = append(errs, pdk.Errorf(fmt.Sprintf("templates[%d].template", i), "must be set (normally an object such as {\"model\": …, \"messages\": […]})"))
			continue
		}
		c.byName[t.Name] = raw
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func hasIndex(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// names lists the template names, sorted, for error messages.
func (c *config) names() []string {
	out := make([]string, 0, len(c.byName))
	for n := range c.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func parse(raw []byte) (*config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.names() {
		pdk.Log().Debugf("template %s: %d bytes", n, len(cfg.byName[n]))
	}
	return cfg, nil
}

var plugin = pdk.Plugin[*config]{
	Name:             pluginName,
	Parse:            parse,
	OnRequestHeaders: onRequestHeaders,
	OnRequestBody:    onRequestBody,
}

func init() { pdk.Register(&plugin) }

func main() {}

// onRequestHeaders keeps the route, honours template-enable: false, drops
// the plugin's own header and content-length (the body changes size).
func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	ctx.DisableReroute()
	enable, present := ctx.RequestHeader(headerTemplateEnable)
	if present {
		// Removing an absent header is a host call for nothing.
		_ = ctx.RemoveRequestHeader(headerTemplateEnable)
	}
	if enable == "false" {
		ctx.DontReadRequestBody()
		return pdk.Continue
	}
	if ct := ctx.ContentType(); ct != "" && !pdk.ContentTypeIsJSON(ct) {
		// multipart uploads, forms …: not a template request.
		ctx.DontReadRequestBody()
		return pdk.Continue
	}
	_ = ctx.RemoveRequestHeader("content-length")
	return pdk.Continue
}

// onRequestBody replaces a {"template": name, "properties": {…}} body with
// the named template, its placeholders filled in.
func onRequestBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	if !gjson.ValidBytes(body) {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidJSON,
			pluginName+": the request body is not valid JSON: "+jsonProblem(body))
	}
	// Most requests do not name a template: without the key "template"
	// (and without escapes, which could spell it differently) the body is
	// not scanned again.
	var name, props gjson.Result
	if pdk.IsJSONObject(body) && pdk.MayContainJSONString(body, `"template"`) {
		name = gjson.GetBytes(body, "template")
		if name.Exists() {
			props = gjson.GetBytes(body, "properties")
		}
	}
	if !name.Exists() || !props.Exists() {
		ctx.Log().Debug("not a template request (needs both template and properties); body left unchanged")
		return pdk.Continue
	}
	if name.Type != gjson.String {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidTemplate,
			pluginName+": template must be the name of a template (a string), not "+kindOf(name))
	}
	if !props.IsObject() {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidProperties,
			pluginName+": properties must be an object of variable values, not "+kindOf(props))
	}
	text, ok := cfg.byName[name.Str]
	if !ok {
		return ctx.ReplyError(400, "invalid_request_error", detailUnknownTemplate,
			fmt.Sprintf("%s: unknown template %q (known: %s)", pluginName, name.Str, knownList(cfg.names())))
	}
	rendered := render(text, props)
	if !gjson.Valid(rendered) {
		// Cannot happen: placeholders only occur inside JSON strings and
		// values are escaped. Never send a broken body upstream.
		ctx.Log().Errorf("template %s rendered to invalid JSON", name.Str)
		return ctx.ReplyError(500, "server_error", detailInvalidTemplate,
			fmt.Sprintf("%s: template %q rendered to invalid JSON", pluginName, name.Str))
	}
	if err := ctx.ReplaceRequestBody([]byte(rendered)); err != nil {
		ctx.Log().Errorf("replace request body failed: %v", err)
	}
	return pdk.Continue
}

// render replaces every {{key}} of the template's JSON text by the value of
// properties.key, in one pass (a value containing {{x}} is not expanded
// again). A placeholder can only be inside a JSON string of the template
// (the configuration is valid JSON), so the value is escaped as the inside
// of a JSON string: strings without quotes, numbers, booleans and
// objects/arrays as their JSON text, null as nothing. Placeholders without
// a property stay as they are.
func render(text string, props gjson.Result) string {
	var pairs []string
	props.ForEach(func(key, value gjson.Result) bool {
		var v string
		switch value.Type {
		case gjson.String:
			v = value.Str
		case gjson.Null:
			v = ""
		default:
			v = value.Raw
		}
		k := string(pdk.EscapeJSONString([]byte(key.Str)))
		pairs = append(pairs, "{{"+k+"}}", string(pdk.EscapeJSONString([]byte(v))))
		return true
	})
	if len(pairs) == 0 {
		return text
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// kindOf names a JSON value's type for error messages.
func kindOf(v gjson.Result) string {
	switch {
	case v.IsObject():
		return "an object"
	case v.IsArray():
		return "a list"
	}
	switch v.Type {
	case gjson.String:
		return "a string"
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	}
	return "null"
}

// knownList lists template names for an error message, at most 10.
func knownList(names []string) string {
	if len(names) == 0 {
		return "none configured"
	}
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(", … %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// jsonProblem describes why body is not JSON, with the byte offset.
func jsonProblem(body []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	switch {
	case len(body) == 0:
		return "the body is empty"
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case err != nil:
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "unexpected data after the JSON value"
}
