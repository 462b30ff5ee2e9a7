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
// §1.6 and the fixes listed in README.md. e2e_test.go runs the wasm in the
// gateway against a real redis-server and the embedded store.

const quotaConfig = `{"admin_consumer":"admin","admin_path":"/quota","redis_key_prefix":"chat_quota:",
	"redis":{"service_name":"redis.static","service_port":6379}}`

func start(t *testing.T, config string) *pdktest.Host {
	t.Helper()
	h := pdktest.New(t, plugin.VMContext(), config,
		pdktest.WithProperty([]string{"route_name"}, "chat"),
		pdktest.WithProperty([]string{"cluster_name"}, "outbound|80||llm.static"))
	if !h.Start() {
		t.Fatalf("configure failed:\n%s", strings.Join(h.Logs(pdk.LevelWarn), "\n"))
	}
	return h
}

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

func cmd(args ...any) string { return string(pdk.EncodeRedisCommand(args...)) }

func counter(h *pdktest.Host, name string) uint64 {
	v, _ := h.GetCounterMetric(name)
	return v
}

func header(hs [][2]string, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

type wantReply struct {
	status  uint32
	details string
	body    string
}

func checkReply(t *testing.T, h *pdktest.Host, id uint32, want wantReply) {
	t.Helper()
	r := h.GetSentLocalResponse(id)
	if r == nil {
		t.Fatalf("no local reply, want %d %q", want.status, want.body)
	}
	if r.StatusCode != want.status || r.StatusCodeDetail != want.details || string(r.Data) != want.body {
		t.Errorf("reply %d %q %q\nwant  %d %q %q", r.StatusCode, r.StatusCodeDetail, r.Data, want.status, want.details, want.body)
	}
}

func TestConfig(t *testing.T) {
	t.Run("fields parsed", func(t *testing.T) {
		c, err := pdk.DecodeConfig[config]([]byte(quotaConfig))
		if err != nil {
			t.Fatal(err)
		}
		if c.AdminConsumer != "admin" || c.AdminPath != "/quota" || c.RedisKeyPrefix != "chat_quota:" || c.client.Cluster() != "outbound|6379||redis.static" {
			t.Errorf("config %+v cluster %s", c, c.client.Cluster())
		}
	})
	t.Run("defaults", func(t *testing.T) {
		c, err := pdk.DecodeConfig[config]([]byte(`{"admin_consumer":"a","redis_key_prefix":"","redis":{"service_name":"r.dns"}}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.AdminPath != "/quota" || c.RedisKeyPrefix != "chat_quota:" || c.client.Cluster() != "outbound|6379||r.dns" {
			t.Errorf("config %+v", c)
		}
	})
	for _, tc := range []struct {
		name, raw string
		want      []string
	}{
		{"empty", `{}`, []string{"admin_consumer: is required", "redis: is required"}},
		{"no admin consumer", `{"redis":{"service_name":"redis.static"}}`, []string{"admin_consumer: is required"}},
		{"empty service name", `{"admin_consumer":"a","redis":{"service_name":""}}`, []string{"redis.service_name: is required"}},
		{"admin path without slash", `{"admin_consumer":"a","admin_path":"quota","redis":{"service_name":"r.dns"}}`, []string{"admin_path: must be a path suffix starting with '/'"}},
		{"unknown field", `{"admin_consumer":"a","admin_pth":"/q","redis":{"service_name":"r.dns"}}`, []string{`admin_pth: unknown field (did you mean "admin_path"?)`}},
		{"bad port", `{"admin_consumer":"a","redis":{"service_name":"r.dns","service_port":70000}}`, []string{"redis.service_port: must be between 1 and 65535"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pdk.DecodeConfig[config]([]byte(tc.raw))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
		})
	}
}

// TestMissingAdminConsumerFailsStart: §1.6, start Failed, the log names
// the field.
func TestMissingAdminConsumerFailsStart(t *testing.T) {
	h := pdktest.New(t, plugin.VMContext(), `{"redis":{"service_name":"redis.static"}}`)
	if h.Start() {
		t.Fatal("configure accepted a config without admin_consumer")
	}
	if logs := strings.Join(h.GetErrorLogs(), "\n"); !strings.Contains(logs, "admin_consumer: is required") {
		t.Errorf("error logs: %s", logs)
	}
}

// TestMode: §1.6 getOperationMode, plus the other metered APIs.
func TestMode(t *testing.T) {
	c, err := pdk.DecodeConfig[config]([]byte(quotaConfig))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]mode{
		"/v1/chat/completions":                     modeCompletion,
		"/v1/chat/completions?x=1":                 modeCompletion,
		"/v1/chat/completions/quota":               modeQuery,
		"/v1/chat/completions/quota?consumer=c":    modeQuery,
		"/v1/chat/completions/quota/refresh":       modeRefresh,
		"/v1/chat/completions/quota/delta":         modeDelta,
		"/api/openai/v1/chat/completions/quota":    modeQuery,
		"/other/path":                              modeNone,
		"/v1/messages":                             modeCompletion,
		"/v1/responses":                            modeCompletion,
		"/v1/embeddings":                           modeCompletion,
		"/v1/completions":                          modeCompletion,
		"/v1/models":                               modeNone,
		"/v1/chat/completions/quota/refresh/extra": modeNone,
	} {
		if got := c.mode(path); got != want {
			t.Errorf("mode(%q) = %s, want %s", path, got, want)
		}
	}
}

// TestConsumerIdentity: §1.3 step 2, for every request the plugin sees.
func TestConsumerIdentity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		extra []string
		want  wantReply
	}{
		{"no consumer header", "/v1/chat/completions", nil,
			wantReply{401, "ai-quota.no_key", msgNoKey}},
		{"no consumer header, other path", "/other/path", nil,
			wantReply{401, "ai-quota.no_key", msgNoKey}},
		{"empty consumer", "/v1/chat/completions", []string{"x-mse-consumer", ""},
			wantReply{403, "ai-quota.unauthorized", msgUnauthorized}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := h.InitializeHttpContext()
			h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", tc.path, tc.extra...), false)
			checkReply(t, h, id, tc.want)
			if r := h.GetSentLocalResponse(id); r != nil && tc.want.status == 401 && header(r.Headers, "content-type") != "text/plain; charset=utf-8" {
				t.Errorf("content-type %q", header(r.Headers, "content-type"))
			}
			if n := len(h.GetRedisCalloutAttributesFromContext(id)); n != 0 {
				t.Errorf("%d redis calls, want none", n)
			}
		})
	}
}

// TestOtherPathPassesUntouched: mode none, no Redis, body unchanged.
func TestOtherPathPassesUntouched(t *testing.T) {
	h := start(t, quotaConfig)
	id := h.InitializeHttpContext()
	if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/other/path", "x-mse-consumer", "consumer1"), false); a != types.ActionContinue {
		t.Errorf("action %v", a)
	}
	h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", "application/json"), false)
	body := `{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	h.CallOnResponseBody(id, []byte(body), true)
	if got := string(h.GetCurrentResponseBody(id)); got != body {
		t.Errorf("body %q", got)
	}
	h.CompleteHttpContext(id)
	if n := len(h.GetRedisCalloutAttributesFromContext(id)); n != 0 {
		t.Errorf("%d redis calls, want none", n)
	}
}

// TestCompletionCheck: §1.6, the request waits for GET; the quota decides.
func TestCompletionCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int32
		reply   string
		deny    *wantReply
		counter string
	}{
		{"quota left", 0, ":1000\r\n", nil, ""},
		{"quota as bulk string", 0, "$3\r\n500\r\n", nil, ""},
		{"no quota key", 0, "$-1\r\n", &wantReply{403, "ai-quota.noquota", msgNoQuota}, "quota_rejected_count"},
		{"zero quota", 0, ":0\r\n", &wantReply{403, "ai-quota.noquota", msgNoQuota}, "quota_rejected_count"},
		{"negative quota", 0, "$3\r\n-25\r\n", &wantReply{403, "ai-quota.noquota", msgNoQuota}, "quota_rejected_count"},
		{"redis unreachable", 1, "", &wantReply{503, "ai-quota.error", "Request denied by ai quota check. The quota store is unavailable: cannot connect to redis cluster"}, "quota_redis_error"},
		{"redis error reply", 0, "-ERR boom\r\n", &wantReply{503, "ai-quota.error", "Request denied by ai quota check. The quota store is unavailable: ERR boom"}, "quota_redis_error"},
		{"not an integer", 0, "$3\r\nabc\r\n", &wantReply{503, "ai-quota.error", `Request denied by ai quota check. The quota store is unavailable: the quota of consumer1 is not an integer ("abc")`}, "quota_redis_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := h.InitializeHttpContext()
			if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions", "x-mse-consumer", "consumer1"), false); a != types.HeaderStopAllIterationAndWatermark {
				t.Fatalf("action %v, want StopAllIterationAndWatermark", a)
			}
			if a := h.CallOnRequestBody(id, []byte(`{"model":"m"}`), true); a != types.ActionContinue {
				t.Errorf("request body action %v, want Continue", a)
			}
			cid, q := pendingRedis(t, h, id)
			if q != cmd("GET", "chat_quota:consumer1") {
				t.Errorf("query %q", q)
			}
			h.CallOnRedisCallResponse(cid, tc.status, []byte(tc.reply))
			if tc.deny == nil {
				if r := h.GetSentLocalResponse(id); r != nil {
					t.Fatalf("local reply %d %q", r.StatusCode, r.Data)
				}
				if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
					t.Errorf("stream action %v, want resumed", a)
				}
				return
			}
			checkReply(t, h, id, *tc.deny)
			name := "route.chat.upstream.outbound|80||llm.static.model.none.consumer.consumer1.metric." + tc.counter
			if got := counter(h, name); got != 1 {
				t.Errorf("counter %s = %d, want 1", name, got)
			}
		})
	}
}

// allowed runs a completion request through an admitted check.
func allowed(t *testing.T, h *pdktest.Host) uint32 {
	t.Helper()
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/v1/chat/completions", "x-mse-consumer", "consumer1"), false)
	cid, _ := pendingRedis(t, h, id)
	h.CallOnRedisCallResponse(cid, 0, []byte(":1000\r\n"))
	return id
}

// TestCompletionCharge: §1.3 response body — chunks pass byte-identical,
// the usage is taken off the quota at the end (DECRBY prompt+completion).
func TestCompletionCharge(t *testing.T) {
	for _, tc := range []struct {
		name, contentType string
		chunks            []string
		want              int64
	}{
		{"json", "application/json", []string{`{"usage":{"prompt_tokens":10,`, `"completion_tokens":15,"total_tokens":25}}`}, 25},
		{"sse with usage in the final chunk", "text/event-stream", []string{
			"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n",
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\"total_tokens\":12}}\n\n",
			"data: [DONE]\n\n",
		}, 12},
		{"sse without usage", "text/event-stream", []string{"data: {\"choices\":[]}\n\n", "data: [DONE]\n\n"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := allowed(t, h)
			h.CallOnResponseHeaders(id, pdktest.Headers(":status", "200", "content-type", tc.contentType), false)
			for i, c := range tc.chunks {
				h.CallOnResponseBody(id, []byte(c), i == len(tc.chunks)-1)
				if got := string(h.GetCurrentResponseBody(id)); got != c {
					t.Errorf("chunk %d changed: %q", i, got)
				}
			}
			h.CompleteHttpContext(id)
			calls := h.GetRedisCalloutAttributesFromContext(id)
			if tc.want == 0 {
				if len(calls) != 0 {
					t.Errorf("%d redis calls, want none", len(calls))
				}
				return
			}
			if len(calls) != 1 || string(calls[0].Query) != cmd("DECRBY", "chat_quota:consumer1", tc.want) {
				t.Fatalf("calls %+v, want DECRBY %d", calls, tc.want)
			}
		})
	}
}

// TestAdminQuery: §1.6, GET …/quota?consumer= by the admin.
func TestAdminQuery(t *testing.T) {
	t.Run("quota", func(t *testing.T) {
		h := start(t, quotaConfig)
		id := h.InitializeHttpContext()
		hdrs := pdktest.Headers(":method", "GET", ":authority", "a.org", ":path", "/v1/chat/completions/quota?consumer=consumer1", "x-mse-consumer", "admin")
		if a := h.CallOnRequestHeaders(id, hdrs, true); a != types.ActionPause {
			t.Fatalf("action %v, want Pause", a)
		}
		cid, q := pendingRedis(t, h, id)
		if q != cmd("GET", "chat_quota:consumer1") {
			t.Errorf("query %q", q)
		}
		h.CallOnRedisCallResponse(cid, 0, []byte(":500\r\n"))
		checkReply(t, h, id, wantReply{200, "ai-quota.queryquota", `{"consumer":"consumer1","quota":500}`})
		if ct := header(h.GetSentLocalResponse(id).Headers, "content-type"); ct != "application/json" {
			t.Errorf("content-type %q", ct)
		}
	})
	t.Run("missing key is 0", func(t *testing.T) {
		h := start(t, quotaConfig)
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, pdktest.Headers(":method", "GET", ":path", "/v1/chat/completions/quota?consumer=x", "x-mse-consumer", "admin"), true)
		cid, _ := pendingRedis(t, h, id)
		h.CallOnRedisCallResponse(cid, 0, []byte("$-1\r\n"))
		checkReply(t, h, id, wantReply{200, "ai-quota.queryquota", `{"consumer":"x","quota":0}`})
	})
	for _, tc := range []struct {
		name, caller, path string
		want               wantReply
	}{
		{"not the admin", "consumer1", "/v1/chat/completions/quota?consumer=consumer1", wantReply{403, "ai-quota.unauthorized", msgNotAdmin}},
		{"no consumer parameter", "admin", "/v1/chat/completions/quota", wantReply{403, "ai-quota.unauthorized", msgEmptyConsumer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := h.InitializeHttpContext()
			h.CallOnRequestHeaders(id, pdktest.Headers(":method", "GET", ":path", tc.path, "x-mse-consumer", tc.caller), true)
			checkReply(t, h, id, tc.want)
		})
	}
	t.Run("redis failure", func(t *testing.T) {
		h := start(t, quotaConfig)
		id := h.InitializeHttpContext()
		h.CallOnRequestHeaders(id, pdktest.Headers(":method", "GET", ":path", "/v1/chat/completions/quota?consumer=x", "x-mse-consumer", "admin"), true)
		cid, _ := pendingRedis(t, h, id)
		h.CallOnRedisCallResponse(cid, 1, nil)
		checkReply(t, h, id, wantReply{503, "ai-quota.error", "redis error:cannot connect to redis cluster"})
	})
}

// TestAdminRefreshAndDelta: §1.6 refresh, and delta, by body.
func TestAdminRefreshAndDelta(t *testing.T) {
	for _, tc := range []struct {
		name, path, contentType, body string
		query                         string
		reply                         string
		want                          wantReply
	}{
		{"refresh", "/v1/chat/completions/quota/refresh", "application/x-www-form-urlencoded", "consumer=consumer1&quota=1000",
			cmd("SET", "chat_quota:consumer1", 1000), "+OK\r\n", wantReply{200, "ai-quota.refreshquota", msgRefreshed}},
		{"refresh negative", "/v1/chat/completions/quota/refresh", "application/x-www-form-urlencoded", "consumer=c&quota=-5",
			cmd("SET", "chat_quota:c", -5), "+OK\r\n", wantReply{200, "ai-quota.refreshquota", msgRefreshed}},
		{"refresh as json", "/v1/chat/completions/quota/refresh", "application/json", `{"consumer":"c","quota":42}`,
			cmd("SET", "chat_quota:c", 42), "+OK\r\n", wantReply{200, "ai-quota.refreshquota", msgRefreshed}},
		{"delta up", "/v1/chat/completions/quota/delta", "application/x-www-form-urlencoded", "consumer=c&value=10",
			cmd("INCRBY", "chat_quota:c", 10), ":20\r\n", wantReply{200, "ai-quota.deltaquota", msgDelta}},
		{"delta down", "/v1/chat/completions/quota/delta", "application/x-www-form-urlencoded", "consumer=c&value=-10",
			cmd("DECRBY", "chat_quota:c", 10), ":0\r\n", wantReply{200, "ai-quota.deltaquota", msgDelta}},
		{"redis error", "/v1/chat/completions/quota/delta", "application/x-www-form-urlencoded", "consumer=c&value=1",
			cmd("INCRBY", "chat_quota:c", 1), "-WRONGTYPE x\r\n", wantReply{503, "ai-quota.error", "redis error:WRONGTYPE x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := h.InitializeHttpContext()
			hdrs := pdktest.Headers(":method", "POST", ":path", tc.path, "content-type", tc.contentType, "x-mse-consumer", "admin")
			if a := h.CallOnRequestHeaders(id, hdrs, false); a != types.ActionPause {
				t.Fatalf("headers action %v, want Pause", a)
			}
			if a := h.CallOnRequestBody(id, []byte(tc.body), true); a != types.ActionPause {
				t.Fatalf("body action %v, want Pause", a)
			}
			cid, q := pendingRedis(t, h, id)
			if q != tc.query {
				t.Errorf("query %q, want %q", q, tc.query)
			}
			h.CallOnRedisCallResponse(cid, 0, []byte(tc.reply))
			checkReply(t, h, id, tc.want)
		})
	}
}

// TestAdminBadRequests: wrong parameters (Higress's 403), no body or an
// unreadable body (400 instead of hanging), not the admin.
func TestAdminBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name, path, caller, contentType, body string
		noBody                                bool
		want                                  wantReply
	}{
		{"refresh without quota", "/v1/chat/completions/quota/refresh", "admin", "application/x-www-form-urlencoded", "consumer=c", false,
			wantReply{403, "ai-quota.unauthorized", msgBadRefresh}},
		{"refresh quota not integer", "/v1/chat/completions/quota/refresh", "admin", "application/x-www-form-urlencoded", "consumer=c&quota=1.5", false,
			wantReply{403, "ai-quota.unauthorized", msgBadRefresh}},
		{"delta without consumer", "/v1/chat/completions/quota/delta", "admin", "application/x-www-form-urlencoded", "value=3", false,
			wantReply{403, "ai-quota.unauthorized", msgBadDelta}},
		{"not the admin", "/v1/chat/completions/quota/refresh", "consumer1", "application/x-www-form-urlencoded", "consumer=c&quota=1", false,
			wantReply{403, "ai-quota.unauthorized", msgNotAdmin}},
		{"no body", "/v1/chat/completions/quota/refresh", "admin", "", "", true,
			wantReply{400, "ai-quota.bad_request", "Request denied by ai quota check. The request has no body: send consumer=<name>&quota=<integer> as application/x-www-form-urlencoded."}},
		{"malformed form", "/v1/chat/completions/quota/delta", "admin", "application/x-www-form-urlencoded", "consumer=%zz&value=1", false,
			wantReply{400, "ai-quota.bad_request", `Request denied by ai quota check. The body is not valid application/x-www-form-urlencoded (invalid URL escape "%zz"): send consumer=<name>&quota=<integer>.`}},
		{"malformed json", "/v1/chat/completions/quota/refresh", "admin", "application/json", `{"consumer":"c",`, false,
			wantReply{400, "ai-quota.bad_request", `Request denied by ai quota check. The body is not valid JSON: send an object such as {"consumer":"alice","quota":1000}.`}},
		{"json array", "/v1/chat/completions/quota/refresh", "admin", "application/json", `[1]`, false,
			wantReply{400, "ai-quota.bad_request", `Request denied by ai quota check. The body must be a JSON object such as {"consumer":"alice","quota":1000}.`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, quotaConfig)
			id := h.InitializeHttpContext()
			hdrs := pdktest.Headers(":method", "POST", ":path", tc.path, "x-mse-consumer", tc.caller)
			if tc.contentType != "" {
				hdrs = append(hdrs, [2]string{"content-type", tc.contentType})
			}
			h.CallOnRequestHeaders(id, hdrs, tc.noBody)
			if h.GetSentLocalResponse(id) == nil && !tc.noBody {
				h.CallOnRequestBody(id, []byte(tc.body), true)
			}
			checkReply(t, h, id, tc.want)
			if n := len(h.GetRedisCalloutAttributesFromContext(id)); n != 0 {
				t.Errorf("%d redis calls, want none", n)
			}
		})
	}
}

// FuzzConfig checks that no configuration makes the decoder panic.
func FuzzConfig(f *testing.F) {
	f.Add(quotaConfig)
	f.Add(`{"admin_consumer":"a","admin_path":"/q/","redis":{"service_name":"r.dns","database":2}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		_, _ = pdk.DecodeConfig[config]([]byte(raw))
	})
}

// FuzzAdminBody checks that no admin body makes the parser panic.
func FuzzAdminBody(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "consumer=a&quota=1")
	f.Add("application/json", `{"consumer":"a","quota":1}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		_, _ = parseAdminBody(contentType, []byte(body))
	})
}
