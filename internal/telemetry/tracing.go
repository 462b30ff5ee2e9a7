package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// DefaultServiceName is the service.name resource attribute when the
// configuration names none.
const DefaultServiceName = "sluice"

// defaultTracesPath is appended to an endpoint URL given without a path.
const defaultTracesPath = "/v1/traces"

// NewTracerProvider returns the tracer provider described by cfg and a
// shutdown function that flushes buffered spans and stops the exporter; the
// caller must call it once, with a deadline, when the process stops.
//
// When cfg.Enabled is false the provider is a no-op and shutdown does
// nothing. Otherwise spans are batched and exported over OTLP/HTTP
// (protobuf) to cfg.Endpoint with cfg.Headers on every request. The endpoint
// is a full http(s) URL; one without a path gets /v1/traces. An empty
// endpoint leaves the choice to the standard OTEL_EXPORTER_OTLP_* variables,
// then to http://localhost:4318/v1/traces. New traces are sampled at
// cfg.SampleRatio (default 1); a request that arrives with a trace context
// follows its parent's decision.
//
// The provider is not installed as the OpenTelemetry global; the returned
// provider and shutdown function are safe for concurrent use. Header values
// never appear in errors or logs.
func NewTracerProvider(ctx context.Context, cfg v1alpha1.Tracing, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if !cfg.Enabled {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}

	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
		if ratio < 0 || ratio > 1 {
			return nil, nil, fmt.Errorf("tracing: sampleRatio %v is outside 0..1", ratio)
		}
	}
	serviceName := cfg.ServiceName
	if serviceName == "" {
		serviceName = DefaultServiceName
	}

	opts := []otlptracehttp.Option{}
	if cfg.Endpoint != "" {
		endpoint, err := tracesURL(cfg.Endpoint)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// New only builds the client; it does not dial, so a collector that is
	// down at start-up costs retries at export time, not a failed start.
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}

	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			semconv.ServiceName(serviceName),
			semconv.ServiceVersion(version),
		),
	)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("tracing: resource: %w", err), exporter.Shutdown(ctx))
	}

	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	shutdown := func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}
	return tp, shutdown, nil
}

// tracesURL checks an OTLP/HTTP endpoint and gives a path-less one the
// standard /v1/traces path. Errors show the URL without its user info.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Error repeats the input, which may hold a password; name the
		// problem only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("tracing: endpoint is not a valid URL: %v (want e.g. http://127.0.0.1:4318/v1/traces)", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: endpoint %q must be an http:// or https:// URL with a host (e.g. http://127.0.0.1:4318/v1/traces)", u.Redacted())
	}
	if strings.Trim(u.Path, "/") == "" {
		u.Path = defaultTracesPath
		u.RawPath = ""
	}
	return u.String(), nil
}
