package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/internal/cluster"
)

// Response details for replies the gateway itself makes. They appear in the
// access log and as the response.code_details property.
const (
	DetailsViaUpstream         = "via_upstream"
	DetailsRouteNotFound       = "route_not_found"
	DetailsNoHealthyUpstream   = "no_healthy_upstream"
	DetailsConnectFailure      = "upstream_connect_failure"
	DetailsUpstreamTimeout     = "upstream_response_timeout"
	DetailsUpstreamReset       = "upstream_reset_before_response_started"
	DetailsUpstreamResetLate   = "upstream_reset_after_response_started"
	DetailsRequestTooLarge     = "request_body_too_large"
	DetailsDownstreamGone      = "downstream_remote_disconnect"
	DetailsRequestTimeout      = "request_overall_timeout"
	DetailsClusterNotHTTP      = "cluster_not_http"
	DetailsDownstreamReadError = "downstream_read_error"
)

var (
	errUpstreamTimeout = errors.New("upstream response timeout")
	errRequestTimeout  = errors.New("request timeout")
)

// classifyUpstreamError maps a failed upstream exchange to status, details
// and the metric kind.
func classifyUpstreamError(ctx context.Context, err error) (status int, details, kind string) {
	cause := context.Cause(ctx)
	var ce *cluster.ConnectError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(cause, errUpstreamTimeout):
		return http.StatusGatewayTimeout, DetailsUpstreamTimeout, "timeout"
	case errors.Is(cause, errRequestTimeout):
		return http.StatusGatewayTimeout, DetailsRequestTimeout, "timeout"
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, DetailsRequestTooLarge, "other"
	case errors.Is(err, cluster.ErrNoHealthyEndpoint):
		return http.StatusServiceUnavailable, DetailsNoHealthyUpstream, "connect"
	case errors.Is(err, cluster.ErrNotHTTP):
		return http.StatusInternalServerError, DetailsClusterNotHTTP, "other"
	case errors.As(err, &ce):
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return http.StatusServiceUnavailable, DetailsConnectFailure, "connect"
		}
		return http.StatusServiceUnavailable, DetailsConnectFailure, "connect"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, DetailsUpstreamTimeout, "timeout"
	}
	return http.StatusBadGateway, DetailsUpstreamReset, "reset"
}

// errorBody renders the JSON body of a gateway reply in the OpenAI error
// shape, which LLM clients already parse.
func errorBody(status int, details, message string) []byte {
	b := make([]byte, 0, 128+len(message))
	b = append(b, `{"error":{"message":`...)
	b = strconv.AppendQuote(b, message)
	b = append(b, `,"type":"gateway_error","code":`...)
	b = strconv.AppendQuote(b, details)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, "}}\n"...)
	return b
}

func gatewayReply(status int, details, message string) localReply {
	return localReply{
		status:  status,
		body:    errorBody(status, details, message),
		headers: []HeaderField{{"content-type", "application/json"}},
		details: details,
		from:    -1,
	}
}

var detailMessages = map[string]string{
	DetailsRouteNotFound:     "no route matches this request",
	DetailsNoHealthyUpstream: "no healthy upstream",
	DetailsConnectFailure:    "could not connect to the upstream",
	DetailsUpstreamTimeout:   "the upstream did not answer in time",
	DetailsRequestTimeout:    "the request did not complete in time",
	DetailsUpstreamReset:     "the upstream connection failed before a response",
	DetailsRequestTooLarge:   "request body too large",
	DetailsClusterNotHTTP:    "the route's cluster does not serve HTTP",
}

func messageFor(details string) string {
	if m, ok := detailMessages[details]; ok {
		return m
	}
	return details
}
