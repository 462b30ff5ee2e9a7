package e2e

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpCollector is an OTLP/HTTP traces endpoint that keeps what it gets.
type otlpCollector struct {
	srv *httptest.Server

	mu       sync.Mutex
	exports  int
	spans    []*tracepb.Span
	services []string
	errs     []string
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	c := &otlpCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost || err != nil {
			c.errs = append(c.errs, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.exports++
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					c.services = append(c.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				c.spans = append(c.spans, ss.GetSpans()...)
			}
		}
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// span returns the exported span with the given trace id, if any.
func (c *otlpCollector) span(traceID string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			return s
		}
	}
	return nil
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]$`)

// TestTracing checks that a traced request carries a traceparent to the
// upstream, is logged with its trace id, and is exported to the collector.
func TestTracing(t *testing.T) {
	col := newOTLPCollector(t)
	up := newEchoUpstream(t, "up")
	g := startGateway(t, gwConfig{
		Spec: []string{`tracing: {enabled: true, endpoint: "` + col.srv.URL + `/v1/traces", serviceName: sluice-e2e}`},
		Docs: []string{clusterDoc("up", []string{up.addr()}), routeDoc("traced", "cluster: up")},
	})

	traceparentAt := func(body []byte) (traceID, spanID string) {
		t.Helper()
		tp := decodeSeen(t, body).Header.Values("Traceparent")
		if len(tp) != 1 {
			t.Fatalf("the upstream got traceparent %q, want one", tp)
		}
		m := traceparentRE.FindStringSubmatch(tp[0])
		if m == nil {
			t.Fatalf("the upstream got traceparent %q, not a W3C traceparent", tp[0])
		}
		return m[1], m[2]
	}

	// A new trace.
	_, body := g.get("", "/new", "X-Request-Id", "trace-new")
	newTrace, newSpan := traceparentAt(body)
	if a := g.waitAccess("trace-new"); a.TraceID != newTrace {
		t.Errorf("access log trace_id %q, want the upstream's %q", a.TraceID, newTrace)
	}

	// A continued trace.
	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	_, body = g.get("", "/continued", "X-Request-Id", "trace-continued", "Traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")
	gotTrace, gotSpan := traceparentAt(body)
	if gotTrace != parentTrace {
		t.Errorf("upstream trace id %s, want the client's %s", gotTrace, parentTrace)
	}
	if gotSpan == parentSpan {
		t.Errorf("upstream parent span is the client's span %s; the gateway's own span must be the parent", gotSpan)
	}
	if a := g.waitAccess("trace-continued"); a.TraceID != parentTrace {
		t.Errorf("access log trace_id %q, want %q", a.TraceID, parentTrace)
	}

	// Shutdown flushes the spans to the collector.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := g.app.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	col.mu.Lock()
	exports, errs, services := col.exports, col.errs, col.services
	col.mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("collector got bad requests: %v", errs)
	}
	if exports == 0 {
		t.Fatalf("the collector received no export")
	}
	for _, s := range services {
		if s != "sluice-e2e" {
			t.Errorf("exported service.name %q, want sluice-e2e", s)
		}
	}
	if s := col.span(newTrace); s == nil {
		t.Errorf("no exported span for trace %s", newTrace)
	} else {
		if got := hex.EncodeToString(s.GetSpanId()); got != newSpan {
			t.Errorf("exported span id %s, but the upstream's parent span is %s", got, newSpan)
		}
		if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("span kind %v, want SERVER", s.GetKind())
		}
	}
	if s := col.span(parentTrace); s == nil {
		t.Errorf("no exported span for trace %s", parentTrace)
	} else {
		if got := hex.EncodeToString(s.GetParentSpanId()); got != parentSpan {
			t.Errorf("exported span's parent %s, want the client's span %s", got, parentSpan)
		}
		if got := hex.EncodeToString(s.GetSpanId()); got != gotSpan {
			t.Errorf("exported span id %s, but the upstream's parent span is %s", got, gotSpan)
		}
	}
}
