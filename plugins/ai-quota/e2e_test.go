package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/redisserver"
	"github.com/sluicegw/sluice/internal/standin/llm"
)

// This file runs the plugin as wasm in the real gateway (internal/app,
// in-process, port 0) in front of the LLM stand-in, with the quotas in a
// private redis-server and, separately, in the gateway's embedded store:
// the same tests must pass on both.

func TestMain(m *testing.M) { os.Exit(plugintest.RunMain(m)) }

type gateway struct {
	*plugintest.Gateway
	t *testing.T
}

// startGateway runs sluice with the plugin configured with cfg (%d in it
// is replaced by the Redis port) in front of the LLM stand-in.
func startGateway(t *testing.T, clusterDoc string, port int, cfg string) *gateway {
	t.Helper()
	upstream := httptest.NewServer(llm.New(llm.Options{}))
	t.Cleanup(upstream.Close)
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, upstream.URL) + clusterDoc + plugintest.PluginDoc("ai-quota", pluginURL, 750, strings.ReplaceAll(cfg, "%d", strconv.Itoa(port)))
	return &gateway{plugintest.Start(t, dir, docs), t}
}

const e2eConfig = `{"admin_consumer":"admin","redis":{"service_name":"redis.static","service_port":%d,"timeout":2000}}`

const (
	chatBody   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`
	streamBody = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}`
)

// tokensPerRequest asks the stand-in directly what chatBody costs
// (prompt + completion tokens).
func tokensPerRequest(t *testing.T) int64 {
	t.Helper()
	s := httptest.NewServer(llm.New(llm.Options{}))
	defer s.Close()
	resp, err := http.Post(s.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Usage struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Usage.PromptTokens == 0 {
		t.Fatalf("stand-in usage: %v %+v", err, r)
	}
	return r.Usage.PromptTokens + r.Usage.CompletionTokens
}

type result struct {
	status int
	body   string
	header http.Header
}

// do sends one request through the gateway; headers are name, value
// pairs. A hanging request fails the test (client timeout).
func (g *gateway) do(method, path, body string, headers ...string) result {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b), resp.Header}
}

func (g *gateway) chat(body, consumer string) result {
	g.t.Helper()
	return g.do("POST", "/v1/chat/completions", body, "content-type", "application/json", "x-mse-consumer", consumer)
}

func (g *gateway) admin(op, body, contentType string) result {
	g.t.Helper()
	return g.do("POST", "/v1/chat/completions/quota/"+op, body, "content-type", contentType, "x-mse-consumer", "admin")
}

// quota reads a consumer's quota through the admin query endpoint.
func (g *gateway) quota(consumer string) int64 {
	g.t.Helper()
	r := g.do("GET", "/v1/chat/completions/quota?consumer="+consumer, "", "x-mse-consumer", "admin")
	var q struct {
		Consumer string
		Quota    int64
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &q) != nil || q.Consumer != consumer {
		g.t.Fatalf("query: %d %s", r.status, r.body)
	}
	if want := fmt.Sprintf(`{"consumer":%q,"quota":%d}`, consumer, q.Quota); r.body != want {
		g.t.Errorf("query body %s, want %s", r.body, want)
	}
	return q.Quota
}

// waitQuota polls the quota until it is want (the charge is sent when the
// response ends, which the client may see first).
func (g *gateway) waitQuota(consumer string, want int64) {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := g.quota(consumer)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("quota of %s = %d, want %d", consumer, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) metrics() string {
	g.t.Helper()
	return plugintest.Metrics(g.t, g.App.AdminAddr())
}

// counterValue finds the plugin's counter whose name ends with suffix
// (-1 when absent).
func counterValue(text, suffix string) float64 {
	re := regexp.MustCompile(`(?m)^sluice_plugin_counter_total\{[^}]*name="[^"]*` + regexp.QuoteMeta(suffix) + `"[^}]*\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if !strings.Contains(m[0], `plugin="`+pluginName+`"`) {
			continue
		}
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			return v
		}
	}
	return -1
}

// TestE2EQuotaLifecycle: a consumer without quota is denied (403); the
// admin sets a quota (refresh), the consumer's requests take their usage
// off it (JSON and streamed responses, the stream's usage from its final
// chunk), an exhausted quota is denied again, and a delta refills it. On
// a real redis-server and on the embedded store.
func TestE2EQuotaLifecycle(t *testing.T) {
	perRequest := tokensPerRequest(t)
	for _, be := range plugintest.RedisBackends {
		t.Run(be.Name, func(t *testing.T) {
			doc, port := be.Cluster(t)
			g := startGateway(t, doc, port, e2eConfig)

			if r := g.chat(chatBody, "alice"); r.status != 403 || r.body != msgNoQuota {
				t.Fatalf("no quota yet: %d %q, want 403 %q", r.status, r.body, msgNoQuota)
			}
			if q := g.quota("alice"); q != 0 {
				t.Errorf("initial quota %d, want 0", q)
			}

			r := g.admin("refresh", "consumer=alice&quota="+strconv.FormatInt(perRequest, 10), "application/x-www-form-urlencoded")
			if r.status != 200 || r.body != msgRefreshed {
				t.Fatalf("refresh: %d %q", r.status, r.body)
			}
			if q := g.quota("alice"); q != perRequest {
				t.Fatalf("quota after refresh %d, want %d", q, perRequest)
			}

			if r := g.chat(chatBody, "alice"); r.status != 200 {
				t.Fatalf("with quota: %d %s", r.status, r.body)
			}
			g.waitQuota("alice", 0)
			if r := g.chat(chatBody, "alice"); r.status != 403 || r.body != msgNoQuota {
				t.Fatalf("quota used up: %d %q, want 403", r.status, r.body)
			}

			r = g.admin("delta", "consumer=alice&value="+strconv.FormatInt(2*perRequest, 10), "application/x-www-form-urlencoded")
			if r.status != 200 || r.body != msgDelta {
				t.Fatalf("delta: %d %q", r.status, r.body)
			}
			g.waitQuota("alice", 2*perRequest)
			r = g.chat(streamBody, "alice")
			if r.status != 200 || !strings.Contains(r.body, "data: [DONE]") {
				t.Fatalf("streamed: %d %s", r.status, r.body)
			}
			g.waitQuota("alice", perRequest)

			r = g.admin("delta", `{"consumer":"alice","value":-5}`, "application/json")
			if r.status != 200 {
				t.Fatalf("json delta: %d %q", r.status, r.body)
			}
			g.waitQuota("alice", perRequest-5)

			if got := counterValue(g.metrics(), "consumer.alice.metric.quota_rejected_count"); got != 2 {
				t.Errorf("quota_rejected_count = %v, want 2", got)
			}
		})
	}
}

// TestE2EAdminAndIdentityErrors: the answers that need no quota.
func TestE2EAdminAndIdentityErrors(t *testing.T) {
	doc, port := plugintest.RedisBackends[1].Cluster(t)
	g := startGateway(t, doc, port, e2eConfig)
	for _, tc := range []struct {
		name             string
		method, path     string
		body             string
		headers          []string
		status           int
		bodyContains     string
		contentTypeWants string
	}{
		{"no consumer header", "POST", "/v1/chat/completions", chatBody, []string{"content-type", "application/json"}, 401, msgNoKey, "text/plain"},
		{"empty consumer", "POST", "/v1/chat/completions", chatBody, []string{"x-mse-consumer", ""}, 403, msgUnauthorized, "text/plain"},
		{"query by a non-admin", "GET", "/v1/chat/completions/quota?consumer=alice", "", []string{"x-mse-consumer", "alice"}, 403, msgNotAdmin, ""},
		{"query without consumer", "GET", "/v1/chat/completions/quota", "", []string{"x-mse-consumer", "admin"}, 403, msgEmptyConsumer, ""},
		{"refresh without body (upstream hangs)", "POST", "/v1/chat/completions/quota/refresh", "", []string{"x-mse-consumer", "admin"}, 400, "The request has no body", ""},
		{"refresh with a bad quota", "POST", "/v1/chat/completions/quota/refresh", "consumer=a&quota=x", []string{"x-mse-consumer", "admin", "content-type", "application/x-www-form-urlencoded"}, 403, msgBadRefresh, ""},
		{"refresh with malformed JSON", "POST", "/v1/chat/completions/quota/refresh", `{"consumer":`, []string{"x-mse-consumer", "admin", "content-type", "application/json"}, 400, "The body is not valid JSON", ""},
		{"delta by a non-admin", "POST", "/v1/chat/completions/quota/delta", "consumer=alice&value=100", []string{"x-mse-consumer", "alice", "content-type", "application/x-www-form-urlencoded"}, 403, msgNotAdmin, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do(tc.method, tc.path, tc.body, tc.headers...)
			if r.status != tc.status || !strings.Contains(r.body, tc.bodyContains) {
				t.Errorf("%d %q, want %d containing %q", r.status, r.body, tc.status, tc.bodyContains)
			}
			if tc.contentTypeWants != "" && !strings.HasPrefix(r.header.Get("Content-Type"), tc.contentTypeWants) {
				t.Errorf("content-type %q", r.header.Get("Content-Type"))
			}
		})
	}
	// A path the plugin does not meter goes to the upstream unchecked.
	if r := g.do("GET", "/v1/models", "", "x-mse-consumer", "alice"); r.status != 200 {
		t.Errorf("GET /v1/models: %d %s", r.status, r.body)
	}
}

// TestE2ERedisDownDenies: with Redis unreachable requests are denied
// (503), and the failure is logged and counted.
func TestE2ERedisDownDenies(t *testing.T) {
	doc, port := plugintest.RedisCluster(t, "127.0.0.1:"+redisserver.FreePort(t))
	g := startGateway(t, doc, port, `{"admin_consumer":"admin","redis":{"service_name":"redis.static","service_port":%d,"timeout":500}}`)
	r := g.chat(chatBody, "alice")
	if r.status != 503 || !strings.Contains(r.body, "The quota store is unavailable") {
		t.Errorf("redis down: %d %q, want 503", r.status, r.body)
	}
	if got := counterValue(g.metrics(), "consumer.alice.metric.quota_redis_error"); got != 1 {
		t.Errorf("quota_redis_error = %v, want 1", got)
	}
	if !strings.Contains(g.Logs.String(), "quota check failed, denying the request") {
		t.Errorf("gateway log does not mention the failed check")
	}
	if r := g.do("GET", "/v1/chat/completions/quota?consumer=alice", "", "x-mse-consumer", "admin"); r.status != 503 || !strings.HasPrefix(r.body, "redis error:") {
		t.Errorf("query with redis down: %d %q", r.status, r.body)
	}
}

// TestE2EInvalidConfigNamesTheField: configure fails, the log names the
// field, the plugin is reported failed.
func TestE2EInvalidConfigNamesTheField(t *testing.T) {
	doc, port := plugintest.RedisBackends[1].Cluster(t)
	g := startGateway(t, doc, port, `{"redis":{"service_name":"redis.static","service_port":%d}}`)
	want := "configure: admin_consumer: is required"
	if !strings.Contains(g.Logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
	plugins := plugintest.PluginStates(t, g.App.AdminAddr())
	if len(plugins) != 1 || plugins[0].State != "failed" {
		t.Errorf("config_dump plugins %+v, want %s failed", plugins, pluginName)
	}
}
