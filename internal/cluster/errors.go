package cluster

import "errors"

var (
	// ErrUnknownCluster is wrapped by every Lookup failure; the wrapping
	// error says why the name did not resolve.
	ErrUnknownCluster = errors.New("unknown cluster")
	// ErrNoHealthyEndpoint means every endpoint of the cluster is ejected by
	// its health check (or has weight 0 under the weighted policy). The
	// gateway answers 503 "no healthy upstream".
	ErrNoHealthyEndpoint = errors.New("no healthy upstream")
	// ErrNotHTTP is returned by RoundTrip on a cluster that does not speak
	// HTTP (type redis).
	ErrNotHTTP = errors.New("cluster does not serve HTTP")
)

// ConnectError wraps a failure to connect to an endpoint: the TCP dial
// (refused, unreachable, connect timeout) or the TLS handshake. Nothing of
// the request was sent, so it is safe to retry elsewhere. It survives
// http.Transport's error handling, so errors.As finds it in RoundTrip's
// error.
type ConnectError struct {
	// Endpoint is the "host:port" that was dialled.
	Endpoint string
	// Err is the dial or handshake error.
	Err error
}

func (e *ConnectError) Error() string {
	return "connect to upstream " + e.Endpoint + ": " + e.Err.Error()
}

func (e *ConnectError) Unwrap() error { return e.Err }
