// Package telemetry owns what the gateway tells operators about the traffic it
// carries: the Prometheus metrics ([Metrics]), the JSON access log
// ([AccessLog], one line per [Record]) and OpenTelemetry tracing
// ([NewTracerProvider], [Propagator]).
//
// It must not decide anything about a request: it records what the gateway
// reports and never changes routing, retries or responses. It must not touch
// process-wide state: metrics go to the registry the caller injects (never
// prometheus.DefaultRegisterer), and the tracer provider is returned, not
// installed as the OpenTelemetry global. Secrets from the configuration
// (tracing headers) are sent where they belong and never logged.
//
// The hot-path entry points ([Metrics.RequestStarted],
// [Metrics.RequestFinished], [AccessLog.Write]) are safe for concurrent use
// and kept allocation-light, because they run once per request.
package telemetry
