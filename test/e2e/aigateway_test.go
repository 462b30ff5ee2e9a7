package e2e

// The AI gateway scenario: examples/ai-gateway.yaml (the six core plugins
// as wasm) in front of the LLM stand-in, with its Redis cluster pointed at a
// real redis-server, driven by the official OpenAI Go library.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/redisserver"
	"github.com/sluicegw/sluice/internal/standin/llm"
)

// aiPlugins are the plugins examples/ai-gateway.yaml runs.
var aiPlugins = []string{"ai-quota", "ai-token-ratelimit", "ai-prompt-template", "ai-prompt-decorator", "ai-statistics", "ai-proxy"}

// startAIGateway runs examples/ai-gateway.yaml with its addresses replaced:
// listeners on port 0, the access log in a file, both provider clusters at
// the stand-in, and the Redis cluster at a private redis-server.
func startAIGateway(t *testing.T) (*gw, *standinCounter) {
	t.Helper()
	plugintest.Builtins(t, aiPlugins...)
	counter := &standinCounter{h: llm.New(llm.Options{})}
	up := httptest.NewServer(counter)
	t.Cleanup(up.Close)
	redisAddr := redisserver.Start(t)
	_, redisPort, _ := strings.Cut(redisAddr, ":")

	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "ai-gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g := &gw{t: t, dir: dir, accessLog: filepath.Join(dir, "access.log"), logs: &lockedBuffer{}}
	text := string(example)
	for _, r := range []struct{ old, new string }{
		{"address: 127.0.0.1:8080", `address: "127.0.0.1:0"`},
		{"address: 127.0.0.1:9901", `address: "127.0.0.1:0"`},
		{"path: stdout", fmt.Sprintf("path: %q", g.accessLog)},
		{"address: 127.0.0.1:18000", "address: " + strings.TrimPrefix(up.URL, "http://")},
		{"  redis:\n    embedded: true\n", "  endpoints:\n    - address: " + redisAddr + "\n"},
		{"service_port: 6379", "service_port: " + redisPort},
	} {
		if !strings.Contains(text, r.old) {
			t.Fatalf("examples/ai-gateway.yaml no longer contains %q; update this test", r.old)
		}
		text = strings.ReplaceAll(text, r.old, r.new)
	}
	return g.launch(text), counter
}

// standinCounter counts the requests that reach the stand-in.
type standinCounter struct {
	h http.Handler
	n atomic.Int64
}

func (c *standinCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

func TestAIGatewayWithOpenAIClient(t *testing.T) {
	g, upstream := startAIGateway(t)
	ctx := context.Background()
	base := "http://" + g.addr("main")
	var ids atomic.Int64
	client := func(consumer, prefix string) sdk.Client {
		return sdk.NewClient(option.WithBaseURL(base+prefix+"/v1/"), option.WithAPIKey("sk-client"),
			option.WithMaxRetries(0), option.WithHeader("x-mse-consumer", consumer),
			option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
				r.Header.Set("x-request-id", fmt.Sprintf("ai-%d", ids.Add(1)))
				return next(r)
			}))
	}
	// admin sets or adjusts a quota through ai-quota's endpoints, as consumer ops.
	admin := func(op, form string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions/quota/"+op, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("x-mse-consumer", "ops")
		resp, body := g.do(req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("quota %s %s: %d %s", op, form, resp.StatusCode, body)
		}
	}
	// lastID is the x-request-id of the latest request; charges land when a
	// response ends, so a test waits for its access log line.
	lastID := func() string { return fmt.Sprintf("ai-%d", ids.Load()) }
	params := sdk.ChatCompletionNewParams{
		Model:    shared.ChatModel("gpt-4o-mini"),
		Messages: []sdk.ChatCompletionMessageParamUnion{sdk.UserMessage("Say hello to the gateway")},
	}
	admin("refresh", "consumer=alice&quota=100000")
	alice := client("alice", "")

	t.Run("chat with model mapping and the decorator's system prompt", func(t *testing.T) {
		c, err := alice.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if c.Model != "mock-gpt" {
			t.Errorf("model %q, want mock-gpt (gpt-4o* is mapped)", c.Model)
		}
		if got := c.Choices[0].Message.Content; got != "Echo: Say hello to the gateway" {
			t.Errorf("content %q", got)
		}
		// The decorator's system message counts in the prompt: more
		// prompt tokens than the user message alone.
		if c.Usage.PromptTokens <= 5 || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens {
			t.Errorf("usage %+v", c.Usage)
		}
		e := g.waitAccess(lastID())
		ai, _ := e.raw["ai_log"].(map[string]any)
		if ai == nil || ai["model"] != "mock-gpt" || ai["consumer"] != "alice" || ai["total_token"] != float64(c.Usage.TotalTokens) || ai["response_type"] != "normal" {
			t.Errorf("ai_log %v", e.raw["ai_log"])
		}
	})

	t.Run("streaming chat reports usage", func(t *testing.T) {
		stream := alice.Chat.Completions.NewStreaming(ctx, params) // no stream_options: ai-proxy adds include_usage
		var acc sdk.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			acc.AddChunk(stream.Current())
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if chunks < 5 || acc.Choices[0].Message.Content != "Echo: Say hello to the gateway" {
			t.Errorf("%d chunks, content %q", chunks, acc.Choices[0].Message.Content)
		}
		if acc.Usage.TotalTokens == 0 || acc.Model != "mock-gpt" {
			t.Errorf("usage %+v model %q: include_usage was not forced", acc.Usage, acc.Model)
		}
		e := g.waitAccess(lastID())
		if ai, _ := e.raw["ai_log"].(map[string]any); ai == nil || ai["response_type"] != "stream" || ai["llm_first_token_duration"] == nil {
			t.Errorf("ai_log %v", e.raw["ai_log"])
		}
	})

	t.Run("Claude behind the OpenAI API", func(t *testing.T) {
		claude := client("alice", "/claude")
		c, err := claude.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if c.Model != "claude-sonnet-4" || c.Choices[0].Message.Content != "Echo: Say hello to the gateway" || c.Usage.TotalTokens == 0 {
			t.Errorf("answer %+v", c)
		}
		stream := claude.Chat.Completions.NewStreaming(ctx, params)
		var acc sdk.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].Message.Content != "Echo: Say hello to the gateway" || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("streamed answer %q, finish %q", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason)
		}
	})

	t.Run("prompt template", func(t *testing.T) {
		var out sdk.ChatCompletion
		err := alice.Post(ctx, "chat/completions", map[string]any{
			"template":   "translate",
			"properties": map[string]string{"language": "French", "text": "good morning"},
		}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if out.Choices[0].Message.Content != "Echo: good morning" || out.Model != "mock-gpt" {
			t.Errorf("templated answer %q (model %q)", out.Choices[0].Message.Content, out.Model)
		}
	})

	t.Run("token limit kicks in at the configured number", func(t *testing.T) {
		admin("refresh", "consumer=trial&quota=100000")
		trial := client("trial", "")
		const limit = 200 // token_per_minute for consumer trial in the example
		used := int64(0)
		for i := 1; ; i++ {
			before := upstream.n.Load()
			replies := redisReplies(g.metrics(), "ai-token-ratelimit")
			c, err := trial.Chat.Completions.New(ctx, params)
			if used >= limit {
				var apiErr *sdk.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("request %d after %d of %d tokens: %v, want 429", i, used, limit, err)
				}
				if dump := string(apiErr.DumpResponse(true)); !strings.Contains(dump, "token limit reached, try again in a minute") || apiErr.Response.Header.Get("X-TokenRateLimit-Reset") == "" {
					t.Errorf("rejection is not the configured one:\n%s", dump)
				}
				if upstream.n.Load() != before {
					t.Errorf("a rejected request reached the provider")
				}
				break
			}
			if err != nil {
				t.Fatalf("request %d after %d of %d tokens: %v", i, used, limit, err)
			}
			used += c.Usage.TotalTokens
			// The charge lands in Redis after the response ended: wait
			// until the plugin handled the replies to its check and charge.
			g.waitAccess(lastID())
			eventually(t, "the token charge to land", func() bool {
				return redisReplies(g.metrics(), "ai-token-ratelimit") >= replies+2
			})
			if i > 50 {
				t.Fatalf("no 429 after %d tokens", used)
			}
		}
		// Another consumer is not limited by trial's window.
		if _, err := alice.Chat.Completions.New(ctx, params); err != nil {
			t.Errorf("alice after trial's limit: %v", err)
		}
	})

	t.Run("quota exhausted then refilled", func(t *testing.T) {
		carol := client("carol", "")
		_, err := carol.Chat.Completions.New(ctx, params)
		var apiErr *sdk.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
			t.Fatalf("carol without quota: %v, want 403", err)
		}
		admin("refresh", "consumer=carol&quota=1")
		if _, err := carol.Chat.Completions.New(ctx, params); err != nil {
			t.Fatalf("carol with quota 1: %v", err)
		}
		g.waitAccess(lastID())
		eventually(t, "carol's quota to be charged", func() bool {
			_, err := carol.Chat.Completions.New(ctx, params)
			return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden
		})
		admin("delta", "consumer=carol&value=1000")
		if _, err := carol.Chat.Completions.New(ctx, params); err != nil {
			t.Errorf("carol after the refill: %v", err)
		}
	})

	t.Run("statistics on /metrics", func(t *testing.T) {
		text := g.metrics()
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`sluice_plugin_counter_total\{[^}]*name="route\.openai\.upstream\.[^"]*\.model\.mock-gpt\.consumer\.alice\.metric\.total_token"[^}]*plugin="ai-statistics"[^}]*\} ([0-9.e+]+)`),
			regexp.MustCompile(`sluice_plugin_counter_total\{[^}]*name="route\.claude\.upstream\.[^"]*\.model\.claude-sonnet-4\.consumer\.alice\.metric\.llm_duration_count"[^}]*plugin="ai-statistics"[^}]*\} ([0-9.e+]+)`),
			regexp.MustCompile(`sluice_plugin_counter_total\{[^}]*name="[^"]*consumer\.trial\.metric\.token_ratelimit_count"[^}]*plugin="ai-token-ratelimit"[^}]*\} ([0-9.e+]+)`),
			regexp.MustCompile(`sluice_plugin_counter_total\{[^}]*name="[^"]*consumer\.carol\.metric\.quota_rejected_count"[^}]*plugin="ai-quota"[^}]*\} ([0-9.e+]+)`),
		} {
			m := want.FindStringSubmatch(text)
			if m == nil {
				t.Errorf("/metrics lacks %s", want)
				continue
			}
			if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
				t.Errorf("%s = %s", want, m[1])
			}
		}
		if t.Failed() {
			t.Logf("plugin counters:\n%s", grep(text, "sluice_plugin_counter_total"))
		}
	})

	t.Run("every plugin ready", func(t *testing.T) {
		resp, body := g.admin("/config_dump", false)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("config_dump: %d", resp.StatusCode)
		}
		for _, p := range aiPlugins {
			if !regexp.MustCompile(`"name":\s*"` + p + `"[^}]*"state":\s*"ready"`).Match(body) {
				t.Errorf("plugin %s not ready in /config_dump:\n%s", p, body)
			}
		}
	})
}

// grep returns the lines of text containing s.
func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// redisReplies reads from metrics text how many Redis replies plugin has
// handled (calls of proxy_on_redis_call_response).
func redisReplies(metrics, plugin string) float64 {
	re := regexp.MustCompile(`(?m)^sluice_wasm_call_duration_seconds_count\{[^}]*\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		if strings.Contains(m[0], `plugin="`+plugin+`"`) && strings.Contains(m[0], `callback="redis_call_response"`) {
			v, _ := strconv.ParseFloat(m[1], 64)
			return v
		}
	}
	return 0
}
