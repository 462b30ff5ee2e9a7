// Command ai-prompt-decorator is a Proxy-Wasm plugin that edits the
// messages of an OpenAI-style chat request: it puts configured messages
// before (prepend) and after (append) the client's, fills ${geo-*}
// placeholders from the geo-ip plugin's properties, and rewrites message
// text with ordered literal or regex rules. See README.md; the behaviour is
// shared/spec/plugins-B.md §6, with the fixes listed there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-prompt-decorator"

// Response-code details (and error codes) of the plugin's local replies.
const (
	detailInvalidJSON     = pluginName + ".invalid_json"
	detailInvalidMessages = pluginName + ".invalid_messages"
)

// message is a prepend or append entry.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// replaceRule rewrites message text.
type replaceRule struct {
	Pattern     string `json:"pattern"`
	Replacement string `json:"replacement"`
	OnRole      string `json:"on_role"`
	Regex       bool   `json:"regex"`

	re *regexp.Regexp
}

// config is the plugin configuration (Higress's field names).
type config struct {
	Prepend []message     `json:"prepend"`
	Append  []message     `json:"append"`
	Replace []replaceRule `json:"replace"`

	// Compiled by Validate: the prepend and append messages as the JSON
	// they put into the request.
	prepend, append []compiledMessage
}

// compiledMessage is a prepend or append entry prepared at configure
// time. A message without ${geo-*} placeholders is final JSON (replace
// rules applied); one with them keeps its role's JSON and its content,
// filled per request.
type compiledMessage struct {
	raw  []byte // final JSON; nil when the content has placeholders
	role []byte // JSON of the role, when raw is nil
	msg  message
}

// Validate checks the configuration and compiles the regex rules.
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	for _, list := range []struct {
		name string
		msgs []message
	}{{"prepend", c.Prepend}, {"append", c.Append}} {
		for i, m := range list.msgs {
			if strings.TrimSpace(m.Role) == "" {
				errs = append(errs, pdk.Errorf(fmt.Sprintf("%s[%d].role", list.name, i), `must not be empty (e.g. "system" or "user")`))
			}
		}
	}
	for i := range c.Replace {
		r := &c.Replace[i]
		field := fmt.Sprintf("replace[%d].pattern", i)
		if r.Pattern == "" {
			errs = append(errs, pdk.Errorf(field, "must not be empty"))
			continue
		}
		if r.Regex {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				errs = append(errs, pdk.Errorf(field, "is not a valid regex: %v", err))
				continue
			}
			r.re = re
		}
	}
	if len(errs) > 0 {
		return errs
	}
	c.prepend = c.compile(c.Prepend)
	c.append = c.compile(c.Append)
	return nil
}

// compile prepares prepend or append entries (see compiledMessage).
func (c *config) compile(msgs []message) []compiledMessage {
	out := make([]compiledMessage, len(msgs))
	for i, m := range msgs {
		if hasGeo(m.Content) {
			role, _ := json.Marshal(m.Role) // a string: cannot fail
			out[i] = compiledMessage{role: role, msg: m}
			continue
		}
		raw, _ := json.Marshal(m) // two strings: cannot fail
		out[i] = compiledMessage{raw: rewrite(c.Replace, raw), msg: m}
	}
	return out
}

// idle reports a configuration that changes nothing.
func (c *config) idle() bool {
	return len(c.Prepend) == 0 && len(c.Append) == 0 && len(c.Replace) == 0
}

var plugin = pdk.Plugin[*config]{
	Name:             pluginName,
	Parse:            pdk.DecodeConfig[config],
	OnRequestHeaders: onRequestHeaders,
	OnRequestBody:    onRequestBody,
}

func init() { pdk.Register(&plugin) }

func main() {}

// onRequestHeaders keeps the route, decides whether the body is read, and
// drops content-length (the body changes size).
func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	ctx.DisableReroute()
	if cfg.idle() {
		ctx.DontReadRequestBody()
		return pdk.Continue
	}
	if ct := ctx.ContentType(); ct != "" && !pdk.ContentTypeIsJSON(ct) {
		// multipart audio uploads, forms …: not a chat request.
		ctx.DontReadRequestBody()
		return pdk.Continue
	}
	_ = ctx.RemoveRequestHeader("content-length")
	return pdk.Continue
}

// onRequestBody rebuilds messages as prepend + client messages + append,
// with the replace rules applied to every message. The new list is
// spliced into the body in place of the old one; the rest of the body is
// kept byte for byte.
func onRequestBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	if !gjson.ValidBytes(body) {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidJSON,
			pluginName+": the request body is not valid JSON: "+jsonProblem(body))
	}
	if !pdk.IsJSONObject(body) {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidJSON,
			pluginName+": the request body must be a JSON object with a messages list")
	}
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.Exists() {
		ctx.Log().Debug("no messages field in the request body; left unchanged")
		return pdk.Continue
	}
	if !msgs.IsArray() {
		return ctx.ReplyError(400, "invalid_request_error", detailInvalidMessages,
			pluginName+": messages must be a list of message objects")
	}

	geo := geoValues{ctx: ctx}
	size := len(msgs.Raw) + 2
	for _, m := range cfg.prepend {
		size += len(m.raw) + len(m.msg.Content) + 32
	}
	for _, m := range cfg.append {
		size += len(m.raw) + len(m.msg.Content) + 32
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	n := 0
	for i := range cfg.prepend {
		out = appendDecorated(out, &n, cfg, &cfg.prepend[i], &geo)
	}
	msgs.ForEach(func(_, m gjson.Result) bool {
		if len(cfg.Replace) == 0 {
			// No rules: the client's message as it is, without a copy.
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = append(out, m.Raw...)
			return true
		}
		out = appendItem(out, &n, rewrite(cfg.Replace, []byte(m.Raw)))
		return true
	})
	for i := range cfg.append {
		out = appendDecorated(out, &n, cfg, &cfg.append[i], &geo)
	}
	out = append(out, ']')

	newBody, err := splice(body, msgs, out)
	if err != nil {
		ctx.Log().Errorf("rewrite body failed, the request goes on unchanged: %v", err)
		return pdk.Continue
	}
	if err := ctx.ReplaceRequestBody(newBody); err != nil {
		ctx.Log().Errorf("replace request body failed: %v", err)
	}
	return pdk.Continue
}

// appendItem appends one list element to out, after a comma unless it is
// the first (*n counts the elements).
func appendItem(out []byte, n *int, raw []byte) []byte {
	if *n > 0 {
		out = append(out, ',')
	}
	*n++
	return append(out, raw...)
}

// appendDecorated appends a prepend or append message: its compiled JSON,
// or, with geo placeholders, the JSON json.Marshal gives the filled-in
// message, with the replace rules applied.
func appendDecorated(out []byte, n *int, cfg *config, m *compiledMessage, geo *geoValues) []byte {
	if m.raw != nil {
		return appendItem(out, n, m.raw)
	}
	content, _ := json.Marshal(geo.fill(m.msg.Content)) // a string: cannot fail
	raw := make([]byte, 0, len(m.role)+len(content)+22)
	raw = append(raw, `{"role":`...)
	raw = append(raw, m.role...)
	raw = append(raw, `,"content":`...)
	raw = append(raw, content...)
	raw = append(raw, '}')
	return appendItem(out, n, rewrite(cfg.Replace, raw))
}

// splice returns body with the value v (found in body by gjson) replaced
// by raw. When v's position is not known it falls back to sjson.
func splice(body []byte, v gjson.Result, raw []byte) ([]byte, error) {
	if out, ok := pdk.SpliceValue(body, v, raw); ok {
		return out, nil
	}
	return sjson.SetRawBytes(body, "messages", raw)
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

// geoVars are the placeholders filled from the geo-ip plugin's
// properties.
var geoVars = [...]string{"geo-country", "geo-province", "geo-city", "geo-isp"}

// geoValues reads the geo properties once per request, when a message
// needs them.
type geoValues struct {
	ctx    *pdk.Context
	values map[string]string
}

// hasGeo reports whether s has a ${geo-*} placeholder.
func hasGeo(s string) bool { return strings.Contains(s, "${geo-") }

func (g *geoValues) fill(s string) string {
	if !hasGeo(s) {
		return s
	}
	if g.values == nil {
		g.values = make(map[string]string, len(geoVars))
		for _, v := range geoVars {
			val, ok := g.ctx.Property(v)
			if !ok {
				g.ctx.Log().Debugf("property %s is not set (is the geo-ip plugin installed?); ${%s} becomes empty", v, v)
			}
			g.values[v] = val
		}
	}
	for _, v := range geoVars {
		s = strings.ReplaceAll(s, "${"+v+"}", g.values[v])
	}
	return s
}

// rewrite applies the replace rules to one message. Messages whose content
// is not a string (multimodal parts, null) and messages no rule changes
// are returned byte for byte; otherwise only content is rewritten.
func rewrite(rules []replaceRule, msg []byte) []byte {
	if len(rules) == 0 {
		return msg
	}
	content := gjson.GetBytes(msg, "content")
	if content.Type != gjson.String {
		return msg
	}
	role, roleRead := "", false
	text := content.String()
	orig := text
	for i := range rules {
		r := &rules[i]
		if r.OnRole != "" {
			if !roleRead {
				role, roleRead = gjson.GetBytes(msg, "role").String(), true
			}
			if r.OnRole != role {
				continue
			}
		}
		if r.re != nil {
			text = r.re.ReplaceAllString(text, r.Replacement)
		} else {
			text = strings.ReplaceAll(text, r.Pattern, r.Replacement)
		}
	}
	if text == orig {
		return msg
	}
	out, err := sjson.SetBytes(msg, "content", text)
	if err != nil {
		return msg
	}
	return out
}
