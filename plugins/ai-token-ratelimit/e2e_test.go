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
// in-process, port 0) in front of the LLM stand-in, with its windows in a
// private redis-server and, separately, in the gateway's embedded store:
// the same tests must pass on both.

func TestMain(m *testing.M) { os.Exit(plugintest.RunMain(m)) }

type gateway struct {
	*plugintest.Gateway
	t *testing.T
}

// startGateway runs sluice with the plugin configured with cfg (a JSON
// object; %d in it is replaced by the Redis port) in front of the LLM
// stand-in.
func startGateway(t *testing.T, clusterDoc string, port int, cfg string) *gateway {
	t.Helper()
	upstream := httptest.NewServer(llm.New(llm.Options{}))
	t.Cleanup(upstream.Close)
	pluginURL := plugintest.PluginURL(t, pluginName)
	dir := t.TempDir()
	docs := plugintest.Resources(dir, upstream.URL) + clusterDoc + plugintest.PluginDoc("ai-token-ratelimit", pluginURL, 600, strings.ReplaceAll(cfg, "%d", strconv.Itoa(port)))
	return &gateway{plugintest.Start(t, dir, docs), t}
}

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

// result is one response through the gateway.
type result struct {
	status int
	body   string
	header http.Header
}

func (g *gateway) post(body string, headers ...string) result {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, string(b), resp.Header}
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

// waitAccessLines waits until the access log has n lines: the streams
// have ended, so their charges were sent.
func (g *gateway) waitAccessLines(n int) {
	g.t.Helper()
	waitFor(g.t, fmt.Sprintf("%d access log lines", n), func() bool {
		b, _ := os.ReadFile(g.AccessLog)
		return strings.Count(string(b), "\n") >= n
	})
}

// waitRedisReplies waits until the plugin has handled n Redis replies
// (calls of proxy_on_redis_call_response). A charge is sent at the end of
// the response and applied by the store some time later; once its reply
// is handled the next check sees it.
func (g *gateway) waitRedisReplies(n float64) {
	g.t.Helper()
	re := regexp.MustCompile(`(?m)^sluice_wasm_call_duration_seconds_count\{[^}]*\} (\S+)$`)
	waitFor(g.t, fmt.Sprintf("%v handled Redis replies", n), func() bool {
		for _, m := range re.FindAllStringSubmatch(g.metrics(), -1) {
			if !strings.Contains(m[0], `plugin="`+pluginName+`"`) || !strings.Contains(m[0], `callback="redis_call_response"`) {
				continue
			}
			v, err := strconv.ParseFloat(m[1], 64)
			return err == nil && v >= n
		}
		return false
	})
}

// waitFor polls cond until it holds or 5 s pass (the charge is sent at the
// end of the response, after the client may already have read it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2ELimitKicksInAtTheConfiguredNumber: with a limit of two requests'
// tokens per minute per consumer, one JSON and one streamed response use
// it up (usage from the stand-in's responses; the stream's from its final
// chunk), the next request gets rejected_code, rejected_msg and
// X-TokenRateLimit-Reset, another consumer is unaffected, and the
// rejection is counted. On a real redis-server and on the embedded store.
func TestE2ELimitKicksInAtTheConfiguredNumber(t *testing.T) {
	perRequest := tokensPerRequest(t)
	for _, be := range plugintest.RedisBackends {
		t.Run(be.Name, func(t *testing.T) {
			doc, port := be.Cluster(t)
			g := startGateway(t, doc, port, fmt.Sprintf(`{"rule_name":"e2e","rejected_code":429,"rejected_msg":"Token budget exhausted",
				"redis":{"service_name":"redis.static","service_port":%%d,"timeout":2000},
				"rule_items":[{"limit_by_per_consumer":"","limit_keys":[{"key":"*","token_per_minute":%d}]}]}`, 2*perRequest))

			if r := g.post(chatBody, "x-mse-consumer", "alice"); r.status != 200 {
				t.Fatalf("first request: %d %s", r.status, r.body)
			}
			r := g.post(streamBody, "x-mse-consumer", "alice")
			if r.status != 200 || !strings.Contains(r.body, `"usage":{"prompt_tokens"`) || !strings.Contains(r.body, "data: [DONE]") {
				t.Fatalf("streamed request: %d %s", r.status, r.body)
			}
			// The charge is sent when the response ends, which the client
			// may see first, and lands in the store later still: wait for
			// the replies to both requests' check and charge.
			g.waitAccessLines(2)
			g.waitRedisReplies(4)
			rejected := g.post(chatBody, "x-mse-consumer", "alice")
			if rejected.status != 429 || rejected.body != "Token budget exhausted" {
				t.Errorf("rejection %d %q, want 429 %q", rejected.status, rejected.body, "Token budget exhausted")
			}
			reset, err := strconv.Atoi(rejected.header.Get("X-TokenRateLimit-Reset"))
			if err != nil || reset < 1 || reset > 60 {
				t.Errorf("X-TokenRateLimit-Reset %q, want 1..60", rejected.header.Get("X-TokenRateLimit-Reset"))
			}
			g.waitAccessLines(3)
			b, _ := os.ReadFile(g.AccessLog)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if last := lines[len(lines)-1]; !regexp.MustCompile(`token_ratelimit_status[\\"]*:[\\"]*limited`).MatchString(last) {
				t.Errorf("access log line of the rejection has no ai_log token_ratelimit_status limited:\n%s", last)
			}
			if r := g.post(chatBody, "x-mse-consumer", "bob"); r.status != 200 {
				t.Errorf("other consumer: %d %s", r.status, r.body)
			}
			if got := counterValue(g.metrics(), "consumer.alice.metric.token_ratelimit_count"); got != 1 {
				t.Errorf("token_ratelimit_count for alice = %v, want 1", got)
			}
		})
	}
}

// TestE2EWindowResets: a per-second window used up by one request admits
// requests again once it expires (TTL honoured by both stores).
func TestE2EWindowResets(t *testing.T) {
	for _, be := range plugintest.RedisBackends {
		t.Run(be.Name, func(t *testing.T) {
			doc, port := be.Cluster(t)
			g := startGateway(t, doc, port, `{"rule_name":"reset",
				"redis":{"service_name":"redis.static","service_port":%d},
				"global_threshold":{"token_per_second":1}}`)
			if r := g.post(chatBody); r.status != 200 {
				t.Fatalf("first request: %d %s", r.status, r.body)
			}
			sawRejection := false
			waitFor(t, "the window to reset after a rejection", func() bool {
				r := g.post(chatBody)
				switch {
				case r.status == 429:
					sawRejection = true
					if v := r.header.Get("X-TokenRateLimit-Reset"); v != "0" && v != "1" {
						t.Errorf("X-TokenRateLimit-Reset %q, want 0 or 1", v)
					}
				case r.status == 200 && sawRejection:
					return true
				case r.status != 200:
					t.Fatalf("request: %d %s", r.status, r.body)
				}
				time.Sleep(50 * time.Millisecond)
				return false
			})
		})
	}
}

// TestE2ERedisDownLetsThrough: with Redis unreachable the request goes
// through, and the failure is logged and counted.
func TestE2ERedisDownLetsThrough(t *testing.T) {
	doc, port := plugintest.RedisCluster(t, "127.0.0.1:"+redisserver.FreePort(t))
	g := startGateway(t, doc, port, `{"rule_name":"down",
		"redis":{"service_name":"redis.static","service_port":%d,"timeout":500},
		"global_threshold":{"token_per_minute":1}}`)
	for i := range 2 {
		if r := g.post(chatBody, "x-mse-consumer", "alice"); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	waitFor(t, "the redis error counter", func() bool {
		return counterValue(g.metrics(), "consumer.alice.metric.token_ratelimit_redis_error") >= 2
	})
	if !strings.Contains(g.Logs.String(), "letting the request through") {
		t.Errorf("gateway log does not mention the failed check")
	}
}

// TestE2EMalformedRequestBody: the plugin does not parse the request body;
// a malformed one reaches the upstream (which answers 400) without a trap,
// and the plugin keeps serving.
func TestE2EMalformedRequestBody(t *testing.T) {
	doc, port := plugintest.RedisBackends[1].Cluster(t)
	g := startGateway(t, doc, port, `{"rule_name":"bad",
		"redis":{"service_name":"redis.static","service_port":%d},
		"global_threshold":{"token_per_minute":100000}}`)
	r := g.post(`{"model":`)
	if r.status != 400 || !strings.Contains(r.body, `"error"`) {
		t.Errorf("malformed body: %d %s, want the stand-in's 400", r.status, r.body)
	}
	if r := g.post(chatBody); r.status != 200 {
		t.Errorf("next request: %d %s", r.status, r.body)
	}
	if strings.Contains(g.Logs.String(), "trap") {
		t.Errorf("gateway log mentions a trap:\n%s", g.Logs)
	}
}

// TestE2EInvalidConfigNamesTheField: configure fails, the log names the
// field, the plugin is reported failed.
func TestE2EInvalidConfigNamesTheField(t *testing.T) {
	doc, port := plugintest.RedisBackends[1].Cluster(t)
	g := startGateway(t, doc, port, `{"rule_name":"x","redis":{"service_name":"redis.static","service_port":%d},
		"rule_items":[{"limit_by_header":"x-k","limit_keys":[{"key":"a","token_per_minute":-100}]}]}`)
	want := "configure: rule_items[0].limit_keys[0].token_per_minute: must be a positive integer, got -100"
	if !strings.Contains(g.Logs.String(), want) {
		t.Errorf("gateway log lacks %q", want)
	}
	plugins := plugintest.PluginStates(t, g.App.AdminAddr())
	if len(plugins) != 1 || plugins[0].State != "failed" {
		t.Errorf("config_dump plugins %+v, want %s failed", plugins, pluginName)
	}
}
