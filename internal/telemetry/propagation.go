package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Propagator returns the propagator the gateway uses to read a client's trace
// context and pass it on to upstreams: W3C Trace Context (traceparent and
// tracestate). Baggage is deliberately not propagated: a gateway must not
// forward arbitrary client key-values to every upstream.
//
// The returned value is stateless and safe for concurrent use.
func Propagator() propagation.TextMapPropagator {
	return propagation.TraceContext{}
}

// TraceID returns the W3C trace id (32 lowercase hex digits) of the span in
// ctx, or "" when ctx carries no valid span context. The gateway puts it in
// [Record.TraceID].
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
