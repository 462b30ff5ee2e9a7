package telemetry

import (
	"encoding/json"
	"strconv"
	"time"
)

// Record is everything known about one finished request. The gateway fills
// one per request and hands it to [Metrics.RequestFinished] and
// [AccessLog.Write]; the access log line is its JSON form (see
// [Record.AppendJSON]).
//
// A Record is plain data; it is not safe to modify while another goroutine
// reads it.
type Record struct {
	// Time is when the request started. A zero Time is logged as the time
	// of the write.
	Time time.Time

	Listener   string // name of the listener that accepted the request
	Method     string
	Authority  string // :authority / Host
	Path       string // path and query as received
	Protocol   string // "HTTP/1.1", "HTTP/2.0"
	ClientAddr string // remote ip:port
	UserAgent  string

	Status       int    // status sent to the client; 0 if none was sent
	Route        string // matched route name; empty when none matched
	Cluster      string // cluster the route sent to; empty for local replies
	UpstreamHost string // endpoint ip:port that served the request

	Duration         time.Duration // first request byte to last response byte
	UpstreamDuration time.Duration // upstream exchange; 0 when none took place
	TimeToFirstByte  time.Duration // start to first response byte; 0 when none was sent

	BytesIn  int64 // request body bytes received
	BytesOut int64 // response body bytes sent

	RequestID       string
	ResponseDetails string // why the gateway answered as it did ("via_upstream", "wasm_fail_stream", …)

	// AILog is the stream's ai_log property (a JSON object written by the
	// plugins). It is omitted when empty, embedded as JSON (whitespace
	// removed) when it is valid UTF-8 JSON, and logged as a JSON string
	// otherwise.
	AILog json.RawMessage

	TraceID string // W3C trace id (32 hex digits) when the request was traced
}

// AppendJSON appends the record as one JSON object, without a trailing
// newline, to b and returns the extended slice. The output is valid JSON and
// valid UTF-8 whatever the fields hold: invalid UTF-8 in strings becomes
// U+FFFD. Field order is fixed (see [AccessLog]); durations are milliseconds
// with microsecond precision.
func (r *Record) AppendJSON(b []byte) []byte {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","listener":`...)
	b = appendString(b, r.Listener)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"authority":`...)
	b = appendString(b, r.Authority)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"protocol":`...)
	b = appendString(b, r.Protocol)
	b = append(b, `,"client_addr":`...)
	b = appendString(b, r.ClientAddr)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, r.UserAgent)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"route":`...)
	b = appendString(b, r.Route)
	b = append(b, `,"cluster":`...)
	b = appendString(b, r.Cluster)
	b = append(b, `,"upstream_host":`...)
	b = appendString(b, r.UpstreamHost)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, r.Duration)
	b = append(b, `,"upstream_duration_ms":`...)
	b = appendMillis(b, r.UpstreamDuration)
	b = append(b, `,"ttfb_ms":`...)
	b = appendMillis(b, r.TimeToFirstByte)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = append(b, `,"request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"response_details":`...)
	b = appendString(b, r.ResponseDetails)
	if len(r.AILog) > 0 {
		b = append(b, `,"ai_log":`...)
		b = appendRawJSON(b, r.AILog)
	}
	b = append(b, `,"trace_id":`...)
	b = appendString(b, r.TraceID)
	return append(b, '}')
}
