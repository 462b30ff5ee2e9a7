package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/plugintest"
	"github.com/sluicegw/sluice/internal/standin/llm"
)

// BenchmarkAIGatewayGuestTime runs examples/ai-gateway.yaml in process (the
// six AI plugins as wasm, the embedded Redis, the LLM stand-in) and
// measures the time spent inside each plugin per request, from
// sluice_wasm_call_duration_seconds. It reports µs per request for every
// plugin and for the chain, and logs the split by callback. Sequential
// requests, one instance per plugin.
//
//	go test -run '^$' -bench AIGatewayGuestTime -benchtime 2000x ./test/e2e
func BenchmarkAIGatewayGuestTime(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "chat"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) { benchGuestTime(b, stream) })
	}
}

func benchGuestTime(b *testing.B, stream bool) {
	plugintest.Builtins(b, aiPlugins...)
	up := httptest.NewServer(llm.New(llm.Options{}))
	b.Cleanup(up.Close)
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "ai-gateway.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	text := string(example)
	for _, r := range []struct{ old, new string }{
		{"address: 127.0.0.1:8080", `address: "127.0.0.1:0"`},
		{"address: 127.0.0.1:9901", `address: "127.0.0.1:0"`},
		{"path: stdout", fmt.Sprintf("path: %q", filepath.Join(dir, "access.log"))},
		{"address: 127.0.0.1:18000", "address: " + strings.TrimPrefix(up.URL, "http://")},
		{"token_per_minute: 100000", "token_per_minute: 1000000000"},
	} {
		if !strings.Contains(text, r.old) {
			b.Fatalf("examples/ai-gateway.yaml no longer contains %q; update this benchmark", r.old)
		}
		text = strings.ReplaceAll(text, r.old, r.new)
	}
	g := plugintest.Start(b, dir, text)
	admin := g.App.AdminAddr()
	if resp, body := plugintest.Do(b, http.MethodPost, g.URL+"/v1/chat/completions/quota/refresh", "consumer=bench&quota=1000000000",
		"x-mse-consumer", "ops", "content-type", "application/x-www-form-urlencoded"); resp.StatusCode != 200 {
		b.Fatalf("quota refresh: %d %s", resp.StatusCode, body)
	}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the plot of Hamlet in two sentences."}]}`
	if stream {
		body = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Summarise the plot of Hamlet in two sentences."}]}`
	}
	do := func() {
		resp, out := plugintest.Do(b, http.MethodPost, g.URL+"/v1/chat/completions", body,
			"x-mse-consumer", "bench", "content-type", "application/json")
		if resp.StatusCode != 200 {
			b.Fatalf("status %d: %s", resp.StatusCode, out)
		}
	}
	for range 50 {
		do()
	}
	before := guestTimes(b, admin)
	b.ResetTimer()
	for b.Loop() {
		do()
	}
	b.StopTimer()
	after := guestTimes(b, admin)
	perPlugin := map[string]float64{}
	var lines []string
	total := 0.0
	for k, v := range after {
		us := (v - before[k]) * 1e6 / float64(b.N)
		plugin, callback, _ := strings.Cut(k, "/")
		perPlugin[plugin] += us
		total += us
		if us >= 0.5 {
			lines = append(lines, fmt.Sprintf("%-20s %-22s %8.1f µs", plugin, callback, us))
		}
	}
	sort.Strings(lines)
	b.Logf("guest time per request by callback:\n%s", strings.Join(lines, "\n"))
	for _, p := range aiPlugins {
		b.ReportMetric(perPlugin[p], p+"-µs/req")
	}
	b.ReportMetric(total, "guest-µs/req")
}

// guestTimes reads sluice_wasm_call_duration_seconds_sum by
// "plugin/callback".
func guestTimes(b *testing.B, admin string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(plugintest.Metrics(b, admin)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "sluice_wasm_call_duration_seconds_sum{") {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, "sluice_wasm_call_duration_seconds_sum{"), "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		var plugin, callback string
		for _, kv := range strings.Split(labels, ",") {
			k, val, _ := strings.Cut(kv, "=")
			val = strings.Trim(val, `"`)
			switch k {
			case "plugin":
				plugin = val
			case "callback":
				callback = val
			}
		}
		out[plugin+"/"+callback] = v
	}
	if len(out) == 0 {
		b.Fatal("no sluice_wasm_call_duration_seconds_sum series on /metrics")
	}
	return out
}
