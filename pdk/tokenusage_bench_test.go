package pdk

import "testing"

// BenchmarkExtractUsage reads the usage of a non-streamed chat completion,
// as the three usage-reading plugins do for every response.
func BenchmarkExtractUsage(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"mock-gpt","choices":[{"index":0,"message":{"role":"assistant","content":"Hamlet, prince of Denmark, seeks revenge for his father's murder by his uncle Claudius. His hesitation and feigned madness lead to tragedy."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":12,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ExtractUsage(body, Usage{}, "m"); !ok {
			b.Fatal("no usage")
		}
	}
}
