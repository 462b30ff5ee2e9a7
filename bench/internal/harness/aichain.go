package harness

// AIChainName is the target of the six core AI plugins.
const AIChainName = "sluice-ai6"

// AIConsumer is the consumer the AI chain's load runs as (x-mse-consumer).
const AIConsumer = "bench"

// AIChain is Sluice with the six core AI plugins of examples/ai-gateway.yaml
// (ai-quota, ai-token-ratelimit, ai-prompt-template, ai-prompt-decorator,
// ai-statistics, ai-proxy), in their documented priority order, built by
// `make plugins` into build/plugins, with Redis as the embedded store. The
// load runs as consumer "bench", whose quota the setup fills and whose
// token limit is far above what a run uses, so every request passes every
// plugin: quota and window lookups in Redis, the template and decorator
// body rewrites, usage extraction and accounting, and ai-proxy's provider
// rewrite (OpenAI, to the mock).
func AIChain() ChainTarget {
	redis := map[string]any{"service_name": "redis.static", "service_port": 6379}
	return ChainTarget{
		Name: AIChainName,
		Plugins: []ChainPlugin{
			{Name: "ai-quota", Wasm: "build/plugins/ai-quota.wasm", Config: map[string]any{
				"admin_consumer": "ops", "admin_path": "/quota", "redis": redis,
			}},
			{Name: "ai-token-ratelimit", Wasm: "build/plugins/ai-token-ratelimit.wasm", Config: map[string]any{
				"rule_name": "bench",
				"rule_items": []any{map[string]any{
					"limit_by_per_consumer": "",
					"limit_keys":            []any{map[string]any{"key": "*", "token_per_minute": 1_000_000_000}},
				}},
				"redis": redis,
			}},
			{Name: "ai-prompt-template", Wasm: "build/plugins/ai-prompt-template.wasm", Config: map[string]any{
				"templates": []any{map[string]any{"name": "translate", "template": map[string]any{
					"model":    "mock-gpt",
					"messages": []any{map[string]any{"role": "user", "content": "{{text}}"}},
				}}},
			}},
			{Name: "ai-prompt-decorator", Wasm: "build/plugins/ai-prompt-decorator.wasm", Config: map[string]any{
				"prepend": []any{map[string]any{"role": "system", "content": "You are the assistant of Example Corp. Be brief."}},
			}},
			{Name: "ai-statistics", Wasm: "build/plugins/ai-statistics.wasm", Config: map[string]any{}},
			{Name: "ai-proxy", Wasm: "build/plugins/ai-proxy.wasm", Config: map[string]any{
				"provider": map[string]any{"type": "openai", "apiTokens": []any{"sk-bench"}},
			}},
		},
		Resources: `apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: redis.static}
spec:
  type: redis
  redis: {embedded: true}`,
		Header: map[string]string{"x-mse-consumer": AIConsumer},
		Setup: []SetupRequest{{
			Method: "POST", Path: "/v1/chat/completions/quota/refresh",
			Header: map[string]string{"x-mse-consumer": "ops", "Content-Type": "application/x-www-form-urlencoded"},
			Body:   "consumer=" + AIConsumer + "&quota=1000000000000",
		}},
	}
}
