package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/gateway"
)

// passFilter continues at every callback: the cheapest filter there is.
type passFilter struct{}

func (passFilter) OnRequestHeaders(*gateway.Headers, bool) gateway.HeadersAction {
	return gateway.HeadersContinue
}
func (passFilter) OnRequestBody(*gateway.Buffer, bool) gateway.DataAction {
	return gateway.DataContinue
}
func (passFilter) OnRequestTrailers(*gateway.Headers) gateway.TrailersAction {
	return gateway.TrailersContinue
}
func (passFilter) OnResponseHeaders(*gateway.Headers, bool) gateway.HeadersAction {
	return gateway.HeadersContinue
}
func (passFilter) OnResponseBody(*gateway.Buffer, bool) gateway.DataAction {
	return gateway.DataContinue
}
func (passFilter) OnResponseTrailers(*gateway.Headers) gateway.TrailersAction {
	return gateway.TrailersContinue
}
func (passFilter) OnLog()     {}
func (passFilter) OnDestroy() {}

type passFactory struct{}

func (passFactory) Name() string                                   { return "pass" }
func (passFactory) NewFilter(*gateway.FilterHandle) gateway.Filter { return passFilter{} }

// benchServer starts a gateway in front of up with routes /plain/ and
// /with/; streams of /with/ run through n pass filters.
func benchServer(b *testing.B, up string, n int) string {
	b.Helper()
	snap, err := config.Parse("bench.yaml", []byte(gatewayDoc+fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: up}
spec:
  endpoints: [{address: %q}]
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: plain}
spec:
  match: {path: {prefix: /plain/}}
  cluster: up
---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: with}
spec:
  match: {path: {prefix: /with/}}
  cluster: up
`, strings.TrimPrefix(up, "http://"))))
	if err != nil {
		b.Fatal(err)
	}
	opts := gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	chain := make([]gateway.FilterFactory, n)
	for i := range chain {
		chain[i] = passFactory{}
	}
	opts.Chain = func(st *gateway.Stream) []gateway.FilterFactory {
		if st.RouteName() == "with" {
			return chain
		}
		return nil
	}
	gw, err := gateway.New(snap, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	return "http://" + gw.Addr("main")
}

func benchUpstream(b *testing.B) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}`)
	}))
	b.Cleanup(up.Close)
	return up.URL
}

const benchBody = `{"model":"mock-gpt","messages":[{"role":"user","content":"hello bench"}]}`

// post sends one chat request and returns how long it took.
func post(b *testing.B, client *http.Client, url string) time.Duration {
	start := time.Now()
	resp, err := client.Post(url, "application/json", strings.NewReader(benchBody))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	return took
}

// BenchmarkChainPathAdded measures what the filter-chain path costs a
// request by itself, with a native filter that does nothing: one gateway,
// route /plain/ without a chain and /with/ through one pass filter, one
// client alternating between them; it reports both medians and the median
// of the pairwise differences. wasmhost's BenchmarkChainAdded does the
// same with a Wasm plugin: the difference between the two is the plugin.
//
//	go test -run '^$' -bench ChainPathAdded -benchtime 5000x ./internal/gateway
func BenchmarkChainPathAdded(b *testing.B) {
	base := benchServer(b, benchUpstream(b), 1)
	plainURL, withURL := base+"/plain/v1/chat/completions", base+"/with/v1/chat/completions"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for range 300 {
		post(b, client, plainURL)
		post(b, client, withURL)
	}
	var plain, with, added []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var p, w time.Duration
		if i%2 == 0 {
			p, w = post(b, client, plainURL), post(b, client, withURL)
		} else {
			w, p = post(b, client, withURL), post(b, client, plainURL)
		}
		plain, with, added = append(plain, p), append(with, w), append(added, w-p)
	}
	b.StopTimer()
	b.ReportMetric(float64(median(plain).Nanoseconds())/1e3, "none-p50-µs")
	b.ReportMetric(float64(median(with).Nanoseconds())/1e3, "chain-p50-µs")
	b.ReportMetric(float64(median(added).Nanoseconds())/1e3, "added-µs")
}

// BenchmarkChainPath runs sequential requests through a gateway without a
// chain and with one pass filter, for profiling the chain path:
//
//	go test -run '^$' -bench 'ChainPath/with' -benchtime 50000x -cpuprofile cpu.out ./internal/gateway
func BenchmarkChainPath(b *testing.B) {
	base := benchServer(b, benchUpstream(b), 1)
	for _, route := range []string{"plain", "with"} {
		b.Run(route, func(b *testing.B) {
			url := base + "/" + route + "/v1/chat/completions"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			b.ReportAllocs()
			for b.Loop() {
				post(b, client, url)
			}
		})
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
