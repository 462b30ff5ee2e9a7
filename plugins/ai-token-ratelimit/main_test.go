package main

import (
	"strings"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

// These tests run the plugin natively on the SDK's proxytest emulator with
// scripted Redis replies: the acceptance cases of shared/spec/plugins-B.md
// §2.6 (main_test.go) and the fixes listed in README.md. e2e_test.go runs
// the wasm in the gateway against a real redis-server and the embedded
// store.

func start(t *testing.T, config string) *pdktest.Host {
	t.Helper()
	h := pdktest.New(t, plugin.VMContext(), config,
		pdktest.WithProperty([]string{"route_name"}, "chat"),
		pdktest.WithProperty([]string{"cluster_name"}, "outbound|80||llm.static"),
		pdktest.WithProperty([]string{"source", "address"}, "192.168.1.20:40000"))
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

// evalQuery is the RESP of the EVAL the plugin sends.
func evalQuery(script, key string, args ...any) string {
	cmd := append([]any{"EVAL", script, 1, key}, args...)
	return string(pdk.EncodeRedisCommand(cmd...))
}

// pendingRedis returns the single Redis call the request has pending.
func pendingRedis(t *testing.T, h *pdktest.Host, id uint32) (uint32, string) {
	t.Helper()
	calls := h.GetRedisCalloutAttributesFromContext(id)
	if len(calls) != 1 {
		t.Fatalf("%d redis calls pending, want 1", len(calls))
	}
	if calls[0].Upstream != "outbound|6379||redis.static" {
		t.Errorf("redis cluster %q", calls[0].Upstream)
	}
	return calls[0].CalloutID, string(calls[0].Query)
}

func respArray(limit, used, ttl string) []byte {
	return []byte("*3\r\n:" + limit + "\r\n:" + used + "\r\n:" + ttl + "\r\n")
}

func counter(h *pdktest.Host, name string) uint64 {
	v, err := h.GetCounterMetric(name)
	if err != nil {
		return 0
	}
	return v
}

const (
	rejectedName = "route.chat.upstream.outbound|80||llm.static.model.none.consumer.consumer1.metric.token_ratelimit_count"
	redisErrName = "route.chat.upstream.outbound|80||llm.static.model.none.consumer.none.metric.token_ratelimit_redis_error"
)

const globalConfig = `{"rule_name":"rn",` + redisJSON + `,"global_threshold":{"token_per_minute":1000}}`

// TestConfigsOfEachKindStart: §2.6, valid configurations start.
func TestConfigsOfEachKindStart(t *testing.T) {
	for name, cfg := range map[string]string{
		"global":   globalConfig,
		"header":   `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_header":"x-api-key","limit_keys":[{"key":"test-key-123","token_per_minute":1000}]}]}`,
		"param":    `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_param":"apikey","limit_keys":[{"key":"param-key-456","token_per_minute":1000}]}]}`,
		"consumer": `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_consumer":"","limit_keys":[{"key":"consumer1","token_per_minute":1000}]}]}`,
		"cookie":   `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_cookie":"session-id","limit_keys":[{"key":"session-789","token_per_minute":1000}]}]}`,
		"per ip":   `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"from-remote-addr","limit_keys":[{"key":"192.168.1.0/24","token_per_minute":1000}]}]}`,
		"regexp":   `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_per_header":"x-user-id","limit_keys":[{"key":"regexp:^user-\\d+$","token_per_minute":1000}]}]}`,
	} {
		t.Run(name, func(t *testing.T) { start(t, cfg) })
	}
}

// TestInvalidConfigFailsConfigure: configure fails and the log names the
// field.
func TestInvalidConfigFailsConfigure(t *testing.T) {
	h := pdktest.New(t, plugin.VMContext(), `{"rule_name":"rn",`+redisJSON+`,"global_threshold":{"token_per_minute":-100}}`)
	if h.Start() {
		t.Fatal("configure accepted a negative window")
	}
	want := "global_threshold.token_per_minute: must be a positive integer, got -100"
	if logs := strings.Join(h.GetErrorLogs(), "\n"); !strings.Contains(logs, want) {
		t.Errorf("error logs lack %q:\n%s", want, logs)
	}
}

// TestRequestPhase: the request waits for the check; the reply decides.
func TestRequestPhase(t *testing.T) {
	cases := []struct {
		name     string
		config   string
		path     string
		headers  []string
		key      string
		reply    []byte
		status   int32
		rejected bool
	}{
		{"global, under the limit", globalConfig, "/v1/chat/completions", nil,
			"higress-token-ratelimit:rn:global_threshold:60", respArray("1000", "1", "60"), 0, false},
		{"header", `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_header":"x-api-key","limit_keys":[{"key":"test-key-123","token_per_minute":1000}]}]}`,
			"/v1/chat/completions", []string{"x-api-key", "test-key-123"},
			"higress-token-ratelimit:rn:limit_by_header:60:x-api-key:test-key-123", respArray("1000", "1", "60"), 0, false},
		{"param", `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_param":"apikey","limit_keys":[{"key":"param-key-456","token_per_minute":1000}]}]}`,
			"/v1/chat/completions?apikey=param-key-456", nil,
			"higress-token-ratelimit:rn:limit_by_param:60:apikey:param-key-456", respArray("1000", "1", "60"), 0, false},
		{"consumer", `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_consumer":"","limit_keys":[{"key":"consumer1","token_per_minute":1000}]}]}`,
			"/v1/chat/completions", []string{"x-mse-consumer", "consumer1"},
			"higress-token-ratelimit:rn:limit_by_consumer:60:x-mse-consumer:consumer1", respArray("1000", "1", "60"), 0, false},
		{"cookie", `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_cookie":"session-id","limit_keys":[{"key":"session-789","token_per_minute":1000}]}]}`,
			"/v1/chat/completions", []string{"cookie", "session-id=session-789; other=value"},
			"higress-token-ratelimit:rn:limit_by_cookie:60:session-id:session-789", respArray("1000", "1", "60"), 0, false},
		{"per ip from remote address", `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"from-remote-addr","limit_keys":[{"key":"192.168.1.0/24","token_per_minute":1000}]}]}`,
			"/v1/chat/completions", nil,
			"higress-token-ratelimit:rn:limit_by_per_ip:60:from-remote-addr:192.168.1.20", respArray("1000", "1", "60"), 0, false},
		{"over the limit", globalConfig, "/v1/chat/completions", []string{"x-mse-consumer", "consumer1"},
			"higress-token-ratelimit:rn:global_threshold:60", respArray("1000", "1001", "42"), 0, true},
		{"exactly at the limit", globalConfig, "/v1/chat/completions", []string{"x-mse-consumer", "consumer1"},
			"higress-token-ratelimit:rn:global_threshold:60", respArray("1000", "1000", "42"), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, strings.Replace(tc.config, `"rn",`, `"rn","rejected_msg":"Too many AI token requests",`, 1))
			id := h.InitializeHttpContext()
			if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", tc.path, tc.headers...), false); a != types.HeaderStopAllIterationAndWatermark {
				t.Fatalf("request headers action %v, want StopAllIterationAndWatermark", a)
			}
			cid, q := pendingRedis(t, h, id)
			if want := evalQuery(checkScript, tc.key, 1000, 60); q != want {
				t.Errorf("query %q\nwant  %q", q, want)
			}
			h.CallOnRedisCallResponse(cid, tc.status, tc.reply)
			r := h.GetSentLocalResponse(id)
			if !tc.rejected {
				if r != nil {
					t.Fatalf("local reply %d %q, want the request resumed", r.StatusCode, r.Data)
				}
				if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
					t.Errorf("stream action %v, want resumed", a)
				}
				return
			}
			if r == nil {
				t.Fatal("no local reply, want 429")
			}
			if r.StatusCode != 429 || r.StatusCodeDetail != "ai-token-ratelimit.rejected" || string(r.Data) != "Too many AI token requests" {
				t.Errorf("reply %d %q %q", r.StatusCode, r.StatusCodeDetail, r.Data)
			}
			if v := header(r.Headers, "X-TokenRateLimit-Reset"); v != "42" {
				t.Errorf("X-TokenRateLimit-Reset %q, want 42 (headers %v)", v, r.Headers)
			}
			if got := counter(h, rejectedName); got != 1 {
				t.Errorf("counter %s = %d, want 1", rejectedName, got)
			}
			log, _ := h.GetProperty([]string{"ai_log"})
			if !strings.Contains(string(log), `token_ratelimit_status\":\"limited`) {
				t.Errorf("ai_log %s lacks token_ratelimit_status limited", log)
			}
		})
	}
}

func header(hs [][2]string, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// TestRejectedCodeAndMessage: rejected_code and rejected_msg are used as
// configured.
func TestRejectedCodeAndMessage(t *testing.T) {
	h := start(t, `{"rule_name":"rn",`+redisJSON+`,"rejected_code":403,"rejected_msg":"Forbidden","global_threshold":{"token_per_hour":5}}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), false)
	cid, _ := pendingRedis(t, h, id)
	h.CallOnRedisCallResponse(cid, 0, respArray("5", "9", "3000"))
	r := h.GetSentLocalResponse(id)
	if r == nil || r.StatusCode != 403 || string(r.Data) != "Forbidden" || header(r.Headers, "X-TokenRateLimit-Reset") != "3000" {
		t.Fatalf("reply %+v", r)
	}
}

// TestNoMatchingItemSkipsRedis: a request without the limited value goes
// through at once, and nothing is charged later.
func TestNoMatchingItemSkipsRedis(t *testing.T) {
	h := start(t, `{"rule_name":"rn",`+redisJSON+`,"rule_items":[{"limit_by_header":"x-api-key","limit_keys":[{"key":"k","token_per_minute":10}]}]}`)
	for name, extra := range map[string][]string{
		"header absent":       nil,
		"other header value":  {"x-api-key", "other"},
		"cookie without =":    {"cookie", "x-api-key"},
		"unrelated consumer":  {"x-mse-consumer", "c"},
		"empty header value ": {"x-api-key", ""},
	} {
		t.Run(name, func(t *testing.T) {
			id := h.InitializeHttpContext()
			if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions", extra...), false); a != types.ActionContinue {
				t.Errorf("action %v, want Continue", a)
			}
			h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "application/json"), false)
			h.CallOnResponseBody(id, []byte(`{"usage":{"prompt_tokens":10,"completion_tokens":15,"total_tokens":25}}`), true)
			if calls := h.GetRedisCalloutAttributesFromContext(id); len(calls) != 0 {
				t.Errorf("redis calls %d, want none", len(calls))
			}
		})
	}
}

// TestRedisFailureLetsThrough: Redis errors fail open, are logged and
// counted.
func TestRedisFailureLetsThrough(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int32
		reply  string
	}{
		{"unreachable", 1, ""},
		{"error reply", 0, "-ERR unknown command 'EVAL'\r\n"},
		{"not an array", 0, ":5\r\n"},
		{"short array", 0, "*2\r\n:1\r\n:2\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, globalConfig)
			id := h.InitializeHttpContext()
			h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), false)
			cid, _ := pendingRedis(t, h, id)
			h.CallOnRedisCallResponse(cid, tc.status, []byte(tc.reply))
			if r := h.GetSentLocalResponse(id); r != nil {
				t.Fatalf("local reply %d, want the request through", r.StatusCode)
			}
			if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
				t.Errorf("stream action %v, want resumed", a)
			}
			if got := counter(h, redisErrName); got != 1 {
				t.Errorf("counter %s = %d, want 1", redisErrName, got)
			}
			if logs := strings.Join(h.GetErrorLogs(), "\n"); !strings.Contains(logs, "letting the request through") {
				t.Errorf("error logs %q", logs)
			}
		})
	}
}

// admitted runs a request through an admitted check and returns its id.
func admitted(t *testing.T, h *pdktest.Host) uint32 {
	t.Helper()
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), false)
	cid, _ := pendingRedis(t, h, id)
	h.CallOnRedisCallResponse(cid, 0, respArray("1000", "0", "60"))
	return id
}

// TestResponseCharges: §2.6's suggested test — the usage at the end of the
// response is charged (prompt + completion) with EVAL count window tokens;
// the body passes unchanged, JSON or SSE.
func TestResponseCharges(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		chunks      []string
		want        int64 // 0: nothing charged
	}{
		{"json body", "application/json", []string{`{"id":"x","usage":{"prompt_tokens":10,`, `"completion_tokens":15,"total_tokens":25}}`}, 25},
		{"sse with final usage chunk", "text/event-stream", []string{
			"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":15,\"total_tokens\":25}}\n\ndata: [DONE]\n\n",
		}, 25},
		{"sse event split across chunks", "text/event-stream", []string{
			"data: {\"choices\":[],\"usage\":{\"prompt_tok",
			"ens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n",
		}, 7},
		{"anthropic stream", "text/event-stream", []string{
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":30}}\n\n",
		}, 42},
		{"no usage", "application/json", []string{`{"id":"x","choices":[]}`}, 0},
		{"zero usage", "application/json", []string{`{"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, globalConfig)
			id := admitted(t, h)
			h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", tc.contentType), false)
			for i, c := range tc.chunks {
				if a := h.CallOnResponseBody(id, []byte(c), i == len(tc.chunks)-1); a != types.ActionContinue {
					t.Errorf("chunk %d action %v", i, a)
				}
				if got := string(h.GetCurrentResponseBody(id)); got != c {
					t.Errorf("chunk %d changed: %q, want %q", i, got, c)
				}
			}
			calls := h.GetRedisCalloutAttributesFromContext(id)
			if tc.want == 0 {
				if len(calls) != 0 {
					t.Errorf("%d redis calls, want none", len(calls))
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("%d redis calls, want the charge", len(calls))
			}
			if want := evalQuery(chargeScript, "higress-token-ratelimit:rn:global_threshold:60", 1000, 60, tc.want); string(calls[0].Query) != want {
				t.Errorf("charge %q\nwant   %q", calls[0].Query, want)
			}
			h.CallOnRedisCallResponse(calls[0].CalloutID, 0, respArray("1000", "25", "60"))
			h.CompleteHttpContext(id)
			if n := len(h.GetRedisCalloutAttributesFromContext(id)); n != 0 {
				t.Errorf("charged again at stream end (%d calls)", n)
			}
		})
	}
}

// TestChargeAtStreamDoneWithoutEndOfStream: a response that ends without
// an end-of-stream body chunk (trailers) is still charged.
func TestChargeAtStreamDoneWithoutEndOfStream(t *testing.T) {
	h := start(t, globalConfig)
	id := admitted(t, h)
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "text/event-stream"), false)
	h.CallOnResponseBody(id, []byte("data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n"), false)
	h.CallOnResponseTrailers(id, nil)
	h.CompleteHttpContext(id)
	calls := h.GetRedisCalloutAttributesFromContext(id)
	if len(calls) != 1 || string(calls[0].Query) != evalQuery(chargeScript, "higress-token-ratelimit:rn:global_threshold:60", 1000, 60, 3) {
		t.Fatalf("calls %+v, want one charge of 3", calls)
	}
}

// TestRejectedRequestIsNotCharged: the local reply passes the plugin's
// response callbacks without a charge.
func TestRejectedRequestIsNotCharged(t *testing.T) {
	h := start(t, globalConfig)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), false)
	cid, _ := pendingRedis(t, h, id)
	h.CallOnRedisCallResponse(cid, 0, respArray("1000", "2000", "1"))
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "429"), false)
	h.CallOnResponseBody(id, []byte(`{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`), true)
	h.CompleteHttpContext(id)
	if n := len(h.GetRedisCalloutAttributesFromContext(id)); n != 0 {
		t.Errorf("%d redis calls after the rejection, want none", n)
	}
}

// TestPerRouteRules: per-route _rules_ pick their own configuration.
func TestPerRouteRules(t *testing.T) {
	h := start(t, `{"_rules_":[{"_match_route_":["chat"],"rule_name":"routed",`+redisJSON+`,"global_threshold":{"token_per_second":5}}]}`)
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions"), false)
	_, q := pendingRedis(t, h, id)
	if want := evalQuery(checkScript, "higress-token-ratelimit:routed:global_threshold:1", 5, 1); q != want {
		t.Errorf("query %q, want %q", q, want)
	}
}
