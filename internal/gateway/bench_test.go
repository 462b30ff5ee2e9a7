package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/internal/benchpair"
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
`, strings.TrimPrefix(up, "http://"))+benchpair.Routes))
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

// BenchmarkChainPathAdded measures what the filter-chain path costs a
// request by itself, with a native filter that does nothing: one gateway,
// route /plain/ without a chain and /with/ through one pass filter, one
// client alternating between them (benchpair). wasmhost's
// BenchmarkChainAdded does the same with a Wasm plugin: the difference
// between the two is the plugin.
//
//	go test -run '^$' -bench ChainPathAdded -benchtime 5000x ./internal/gateway
func BenchmarkChainPathAdded(b *testing.B) {
	base := benchServer(b, benchpair.Upstream(b), 1)
	benchpair.Run(b, base+"/plain/v1/chat/completions", base+"/with/v1/chat/completions", "chain")
}
