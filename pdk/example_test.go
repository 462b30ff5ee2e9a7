package pdk_test

import (
	"fmt"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// A plugin's main package: configuration type, Plugin value, registration
// from init (main stays empty for the Go reactor build).
func ExampleRegister() {
	type config struct {
		Header string `json:"header"`
		Value  string `json:"value"`
	}
	plugin := pdk.Plugin[*config]{
		Name:  "add-header",
		Parse: pdk.DecodeConfig[config],
		OnRequestHeaders: func(ctx *pdk.Context, cfg *config) pdk.Action {
			_ = ctx.SetRequestHeader(cfg.Header, cfg.Value)
			return pdk.Continue
		},
		OnRequestBody: func(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
			// Called once, with the whole body.
			ctx.Log().Debugf("request body of %d bytes", len(body))
			return pdk.Continue
		},
	}
	// In the plugin: func init() { pdk.Register(&plugin) }
	_ = plugin
}

type rateConfig struct {
	Limit  int    `json:"limit"`
	Window string `json:"window"`
}

func (c *rateConfig) SetDefaults() { c.Window = "minute" }

func (c *rateConfig) Validate() error {
	if c.Limit <= 0 {
		return pdk.Errorf("limit", "must be positive, not %d", c.Limit)
	}
	return nil
}

// DecodeConfig reports every problem at once, each naming its field.
func ExampleDecodeConfig() {
	cfg, err := pdk.DecodeConfig[rateConfig]([]byte(`{"limit": 10}`))
	fmt.Println(cfg.Limit, cfg.Window, err)

	_, err = pdk.DecodeConfig[rateConfig]([]byte(`{"limit": "10", "windw": "hour"}`))
	fmt.Println(err)
	// Output:
	// 10 minute <nil>
	// limit: must be an integer, not a string
	// windw: unknown field (did you mean "window"?)
}

// Events split across network chunks come out whole.
func ExampleSSEParser() {
	var p pdk.SSEParser
	for _, chunk := range []string{"data: {\"a\"", ":1}\r\n\r\nevent: done\r\ndata: [DONE]\r\n", "\r\n"} {
		for _, ev := range p.Feed([]byte(chunk)) {
			fmt.Printf("event=%q data=%s\n", ev.Event, ev.Data)
		}
	}
	// Output:
	// event="" data={"a":1}
	// event="done" data=[DONE]
}

// A streamed Anthropic response: input tokens come in message_start, output
// tokens in message_delta.
func ExampleUsageTracker() {
	var tr pdk.UsageTracker
	stream := "event: message_start\ndata: {\"message\":{\"model\":\"claude-sonnet-4\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"usage\":{\"output_tokens\":15}}\n\n"
	for _, chunk := range strings.SplitAfter(stream, "}}") {
		tr.Feed([]byte(chunk), false)
	}
	u, _ := tr.Usage()
	fmt.Println(u.Model, u.InputTokens, u.OutputTokens, u.TotalTokens)
	// Output: claude-sonnet-4 25 15 40
}

// Plugins merge their attributes into one ai_log object, kept escaped in
// the property.
func ExampleMergeLog() {
	prev := []byte(`{\"cache_status\":\"hit\"}`) // written by ai-cache
	merged, _ := pdk.MergeLog(prev, map[string]any{"model": "gpt-4o", "input_token": 12})
	fmt.Println(string(merged))
	// Output: {\"cache_status\":\"hit\",\"input_token\":12,\"model\":\"gpt-4o\"}
}

// A callout from request headers: hold the request, resume from the
// callback.
func ExampleHTTPClient_Call() {
	client := pdk.HTTPClient{Cluster: pdk.FQDNCluster("auth.dns", 443, "auth.example.com")}
	onRequestHeaders := func(ctx *pdk.Context, _ struct{}) pdk.Action {
		err := client.Call("POST", "/check", [][2]string{{"content-type", "application/json"}}, []byte(`{}`),
			func(r *pdk.HTTPResponse) {
				if r.Status != 200 {
					ctx.ReplyError(403, "", "auth.denied", "not allowed")
					return
				}
				_ = ctx.ResumeRequest()
			}, 0)
		if err != nil {
			return pdk.Continue // fail open
		}
		return pdk.StopAllWatermark
	}
	_ = onRequestHeaders
}

// A counter in Redis with a Lua script.
func ExampleRedisClient_Eval() {
	client, err := pdk.NewRedisClient(pdk.RedisConfig{ServiceName: "redis.static"})
	if err != nil {
		return
	}
	// In Parse: _ = client.Init()
	onRequestHeaders := func(ctx *pdk.Context, _ struct{}) pdk.Action {
		err := client.Eval("return redis.call('INCR', KEYS[1])", 1, []any{"hits"}, nil, func(v pdk.RedisValue) {
			if n, err := v.Int(); err == nil && n > 100 {
				ctx.ReplyError(429, "rate_limit_error", "limited", "too many requests")
				return
			}
			_ = ctx.ResumeRequest()
		})
		if err != nil {
			return pdk.Continue
		}
		return pdk.StopAllWatermark
	}
	_ = onRequestHeaders
}

// The OpenAI-style error a plugin answers with.
func ExampleErrorReply() {
	r := pdk.ErrorReply(400, "", "my-plugin.bad_body", "messages must be a list")
	fmt.Println(r.Status, r.Details, strings.TrimSpace(string(r.Body)))
	// Output: 400 my-plugin.bad_body {"error":{"message":"messages must be a list","type":"invalid_request_error","code":"my-plugin.bad_body"}}
}
