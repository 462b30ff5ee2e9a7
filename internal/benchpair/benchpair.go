// Package benchpair measures what one configuration adds to a request
// against another on the same gateway: a benchmark alternates single
// requests between two URLs and reports the median of the pairwise
// differences. Neighbouring requests share the connection, the machine's
// state and its drift, which makes that median far steadier than a
// difference between separate runs on a shared machine.
package benchpair

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// Body is the chat completion request the benchmarks send.
const Body = `{"model":"mock-gpt","messages":[{"role":"user","content":"hello bench"}]}`

// Run warms both URLs, then sends b.N pairs of POSTs of Body, alternating
// which goes first, and reports "none-p50-µs" (plain), withName+"-p50-µs"
// and "added-µs", the median of with − plain over the pairs.
func Run(b *testing.B, plain, with, withName string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	for range 300 {
		post(b, client, plain)
		post(b, client, with)
	}
	var ps, ws, added []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var p, w time.Duration
		if i%2 == 0 {
			p, w = post(b, client, plain), post(b, client, with)
		} else {
			w, p = post(b, client, with), post(b, client, plain)
		}
		ps, ws, added = append(ps, p), append(ws, w), append(added, w-p)
	}
	b.StopTimer()
	b.ReportMetric(micros(Median(ps)), "none-p50-µs")
	b.ReportMetric(micros(Median(ws)), withName+"-p50-µs")
	b.ReportMetric(micros(Median(added)), "added-µs")
}

// post sends one request and returns how long it took; anything but a 200
// fails the benchmark.
func post(b *testing.B, client *http.Client, url string) time.Duration {
	start := time.Now()
	resp, err := client.Post(url, "application/json", strings.NewReader(Body))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	return took
}

// Median returns the middle of d (d is not changed).
func Median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Upstream starts a server that reads the request and answers a fixed,
// small chat completion, and returns its URL.
func Upstream(b *testing.B) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}`)
	}))
	b.Cleanup(up.Close)
	return up.URL
}

// Routes are the configuration documents of the two routes Run compares,
// /plain/ (route "plain") and /with/ (route "with"), both to cluster "up".
const Routes = `---
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
`
