package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// export is one request received by the fake collector.
type export struct {
	path, contentType, apiKey string
	body                      []byte
}

// collector is an OTLP/HTTP traces receiver that records what it is sent.
type collector struct {
	*httptest.Server
	status int

	mu      sync.Mutex
	exports []export
}

func newCollector(t *testing.T, status int) *collector {
	t.Helper()
	c := &collector{status: status}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.exports = append(c.exports, export{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Api-Key"), body})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(c.status)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) received() []export {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]export(nil), c.exports...)
}

func ratio(f float64) *float64 { return &f }

func TestTracerExportsToCollector(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(base string) string
		wantPath string
	}{
		{"base URL gets /v1/traces", func(base string) string { return base }, "/v1/traces"},
		{"trailing slash gets /v1/traces", func(base string) string { return base + "/" }, "/v1/traces"},
		{"explicit path kept", func(base string) string { return base + "/v1/traces" }, "/v1/traces"},
		{"custom path kept", func(base string) string { return base + "/otlp/custom" }, "/otlp/custom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector(t, http.StatusOK)
			ctx := context.Background()
			tp, shutdown, err := NewTracerProvider(ctx, v1alpha1.Tracing{
				Enabled:     true,
				Endpoint:    tt.endpoint(col.URL),
				Headers:     map[string]string{"X-Api-Key": "s3cret-key"},
				ServiceName: "sluice-test",
			}, "1.2.3")
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(ctx, "POST /v1/chat/completions")
			if !span.SpanContext().IsSampled() {
				t.Fatal("span not sampled with the default ratio")
			}
			span.End()

			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := shutdown(sctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}

			got := col.received()
			if len(got) != 1 {
				t.Fatalf("collector received %d exports after shutdown, want 1", len(got))
			}
			e := got[0]
			if e.path != tt.wantPath {
				t.Errorf("path = %q, want %q", e.path, tt.wantPath)
			}
			if e.contentType != "application/x-protobuf" {
				t.Errorf("content-type = %q, want application/x-protobuf", e.contentType)
			}
			if e.apiKey != "s3cret-key" {
				t.Errorf("X-Api-Key = %q, want the configured header", e.apiKey)
			}
			if len(e.body) == 0 {
				t.Fatal("empty export body")
			}
			var req coltracepb.ExportTraceServiceRequest
			if err := proto.Unmarshal(e.body, &req); err != nil {
				t.Fatalf("body is not an ExportTraceServiceRequest: %v", err)
			}
			rs := req.GetResourceSpans()
			if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || len(rs[0].GetScopeSpans()[0].GetSpans()) != 1 {
				t.Fatalf("want one span, got %v", &req)
			}
			if name := rs[0].GetScopeSpans()[0].GetSpans()[0].GetName(); name != "POST /v1/chat/completions" {
				t.Errorf("span name = %q", name)
			}
			attrs := map[string]string{}
			for _, kv := range rs[0].GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if attrs["service.name"] != "sluice-test" || attrs["service.version"] != "1.2.3" {
				t.Errorf("resource attributes = %v, want service.name sluice-test, service.version 1.2.3", attrs)
			}
		})
	}
}

func TestTracerDefaultServiceName(t *testing.T) {
	col := newCollector(t, http.StatusOK)
	tp, shutdown, err := NewTracerProvider(context.Background(), v1alpha1.Tracing{Enabled: true, Endpoint: col.URL}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "s")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := col.received()
	if len(got) != 1 {
		t.Fatalf("%d exports, want 1", len(got))
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(got[0].body, &req); err != nil {
		t.Fatal(err)
	}
	for _, kv := range req.GetResourceSpans()[0].GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			if v := kv.GetValue().GetStringValue(); v != DefaultServiceName {
				t.Errorf("service.name = %q, want %q", v, DefaultServiceName)
			}
			return
		}
	}
	t.Error("no service.name resource attribute")
}

func TestTracerSampling(t *testing.T) {
	sampledParent := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	unsampledParent := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}}
	tests := []struct {
		name        string
		ratio       *float64
		parent      http.Header
		wantSampled bool
	}{
		{"ratio 0 drops new traces", ratio(0), nil, false},
		{"ratio 1 keeps new traces", ratio(1), nil, true},
		{"sampled parent wins over ratio 0", ratio(0), sampledParent, true},
		{"unsampled parent wins over ratio 1", ratio(1), unsampledParent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector(t, http.StatusOK)
			tp, shutdown, err := NewTracerProvider(context.Background(), v1alpha1.Tracing{Enabled: true, Endpoint: col.URL, SampleRatio: tt.ratio}, "dev")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.parent != nil {
				ctx = Propagator().Extract(ctx, propagation.HeaderCarrier(tt.parent))
			}
			ctx, span := tp.Tracer("test").Start(ctx, "s")
			if got := span.SpanContext().IsSampled(); got != tt.wantSampled {
				t.Errorf("sampled = %v, want %v", got, tt.wantSampled)
			}
			if tt.parent != nil && TraceID(ctx) != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("TraceID = %q, want the parent's", TraceID(ctx))
			}
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantExports := 0
			if tt.wantSampled {
				wantExports = 1
			}
			if n := len(col.received()); n != wantExports {
				t.Errorf("%d exports, want %d", n, wantExports)
			}
		})
	}
}

func TestTracerDisabledIsNoop(t *testing.T) {
	tp, shutdown, err := NewTracerProvider(context.Background(), v1alpha1.Tracing{Enabled: false, Endpoint: "not even a url"}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "s")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("disabled tracing produced a recording span")
	}
	if TraceID(ctx) != "" {
		t.Errorf("TraceID = %q, want empty", TraceID(ctx))
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown = %v", err)
	}
}

func TestTracerConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		cfg      v1alpha1.Tracing
		wantErr  string
		mustHide string
	}{
		{"ratio above 1", v1alpha1.Tracing{Enabled: true, SampleRatio: ratio(1.5)}, "sampleRatio 1.5", ""},
		{"negative ratio", v1alpha1.Tracing{Enabled: true, SampleRatio: ratio(-0.1)}, "sampleRatio -0.1", ""},
		{"not http", v1alpha1.Tracing{Enabled: true, Endpoint: "grpc://collector:4317"}, "must be an http:// or https:// URL", ""},
		{"no host", v1alpha1.Tracing{Enabled: true, Endpoint: "http:///v1/traces"}, "with a host", ""},
		{"bare host:port", v1alpha1.Tracing{Enabled: true, Endpoint: "collector:4318"}, "must be an http:// or https:// URL", ""},
		{"password not echoed", v1alpha1.Tracing{Enabled: true, Endpoint: "ftp://user:hunter2@collector"}, "must be an http", "hunter2"},
		{"unparsable URL not echoed", v1alpha1.Tracing{Enabled: true, Endpoint: "http://user:hunter2@[::1"}, "not a valid URL", "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := NewTracerProvider(context.Background(), tt.cfg, "dev")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.mustHide != "" && strings.Contains(err.Error(), tt.mustHide) {
				t.Errorf("error leaks %q: %v", tt.mustHide, err)
			}
		})
	}
}

// errorRecorder captures what the OpenTelemetry SDK reports through its
// global error handler, which is where failed exports end up.
type errorRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *errorRecorder) Handle(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func TestTracerHeadersNeverInErrors(t *testing.T) {
	// Not parallel: it swaps the OpenTelemetry global error handler.
	rec := &errorRecorder{}
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(rec)
	t.Cleanup(func() { otel.SetErrorHandler(prev) })

	col := newCollector(t, http.StatusUnauthorized) // not retried
	const secret = "Bearer very-secret-token"
	tp, shutdown, err := NewTracerProvider(context.Background(), v1alpha1.Tracing{
		Enabled: true, Endpoint: col.URL, Headers: map[string]string{"Authorization": secret, "X-Api-Key": secret},
	}, "dev")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "s")
	span.End()
	shutdownErr := shutdown(context.Background())

	if len(col.received()) != 1 {
		t.Fatalf("%d exports, want 1", len(col.received()))
	}
	rec.mu.Lock()
	all := append([]error{shutdownErr}, rec.errs...)
	rec.mu.Unlock()
	if errors.Join(all...) == nil {
		t.Fatal("a 401 from the collector was reported nowhere")
	}
	for _, e := range all {
		if e != nil && strings.Contains(e.Error(), "very-secret-token") {
			t.Errorf("export error leaks the header value: %v", e)
		}
	}
}

func TestPropagatorRoundTrip(t *testing.T) {
	in := http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":  {"vendor=abc"},
		"Baggage":     {"user=alice"},
	}
	ctx := Propagator().Extract(context.Background(), propagation.HeaderCarrier(in))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("extracted span context %v", sc)
	}
	out := http.Header{}
	Propagator().Inject(ctx, propagation.HeaderCarrier(out))
	if got := out.Get("Traceparent"); got != in.Get("Traceparent") {
		t.Errorf("traceparent = %q, want %q", got, in.Get("Traceparent"))
	}
	if got := out.Get("Tracestate"); got != "vendor=abc" {
		t.Errorf("tracestate = %q", got)
	}
	if got := out.Get("Baggage"); got != "" {
		t.Errorf("baggage forwarded: %q", got)
	}
}
