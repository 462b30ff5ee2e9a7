package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/gateway"
)

// maxCalloutBody bounds a callout response body kept for the guest.
const maxCalloutBody = 64 << 20

// httpCallResult is what proxy_on_http_call_response exposes.
type httpCallResult struct {
	headers  *gateway.Headers
	trailers *gateway.Headers
	body     []byte
	status   Status
	msg      string
}

// pendingCallout is an HTTP or Redis call in flight. It belongs to the
// root context that issued it; owner is the stream it was issued for.
type pendingCallout struct {
	root   uint32
	owner  *Filter
	cancel context.CancelFunc
}

// addCallout records a callout just started for the current root (and
// stream, whose driver then expects its completion). Caller holds in.mu.
func (in *Instance) addCallout(tok uint32, cancel context.CancelFunc) *pendingCallout {
	pc := &pendingCallout{root: in.rootOf(), owner: in.effectiveStream(), cancel: cancel}
	if pc.owner != nil {
		pc.owner.h.Expect()
	}
	in.callouts[tok] = pc
	return pc
}

// dropCallout forgets a callout that completed or was abandoned: it is
// cancelled, and its stream no longer expects it. Caller holds in.mu.
func (in *Instance) dropCallout(tok uint32, pc *pendingCallout) {
	delete(in.callouts, tok)
	if pc.cancel != nil {
		pc.cancel()
	}
	if pc.owner != nil {
		pc.owner.h.Arrived()
	}
}

func (in *Instance) newToken(kind uint32) uint32 {
	in.nextToken++
	return in.nextToken*4 + kind
}

// complete delivers a finished callout: on the owning stream's driver when
// the stream is alive, else directly under the instance lock. Each token is
// delivered at most once, never after the instance died or the root went.
func (in *Instance) complete(tok uint32, run func(root uint32)) {
	in.mu.Lock()
	pc := in.callouts[tok]
	in.mu.Unlock()
	if pc == nil {
		return
	}
	if pc.owner != nil && pc.owner.h.Post(func() { in.runCompletion(tok, pc.owner, run) }) {
		return
	}
	in.runCompletion(tok, nil, run)
}

func (in *Instance) runCompletion(tok uint32, owner *Filter, run func(root uint32)) {
	in.mu.Lock()
	pc, ok := in.callouts[tok]
	if !ok || in.closed.Load() {
		in.mu.Unlock()
		return
	}
	in.dropCallout(tok, pc)
	if owner != nil && (owner.gone || owner.in != in) {
		owner = nil
	}
	gc := in.contexts[pc.root]
	if !in.dead.Load() && gc != nil && gc.rs != nil && !gc.rs.deleted {
		in.callOwner = owner
		run(pc.root)
		in.callOwner = nil
	}
	dead, err := in.dead.Load(), in.deathErr
	in.mu.Unlock()
	if dead && owner != nil {
		// The stream may be paused on this callout: the instance that
		// would resume it is gone (dead before, or crashed in the callback).
		owner.failWaiting("callout_response", err)
	}
}

// proxy_http_call(cluster_ptr, cluster_len, hdrs_ptr, hdrs_len, body_ptr,
// body_len, trl_ptr, trl_len, timeout_ms, ret_token_ptr)
func hcHTTPCall(in *Instance, s []uint64) Status {
	name, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	rawH, ok := in.readCopy(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	body, ok := in.readCopy(u32(s[4]), u32(s[5]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	rawT, ok := in.readCopy(u32(s[6]), u32(s[7]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	timeout := time.Duration(u32(s[8])) * time.Millisecond
	keys, vals, err := decodePairs(rawH)
	if err != nil {
		return StatusBadArgument
	}
	tkeys, tvals, err := decodePairs(rawT)
	if err != nil {
		return StatusBadArgument
	}
	var method, path, authority string
	hdr := http.Header{}
	for i, k := range keys {
		switch strings.ToLower(k) {
		case ":method":
			method = vals[i]
		case ":path":
			path = vals[i]
		case ":authority":
			authority = vals[i]
		case ":scheme", "content-length":
		default:
			hdr.Add(k, vals[i])
		}
	}
	if method == "" || path == "" || authority == "" {
		in.logger.Warn("http call refused: :method, :path and :authority are required", "cluster", name)
		return StatusBadArgument
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return StatusBadArgument
	}
	src := in.plugin.svc.Clusters
	if src == nil {
		return StatusBadArgument
	}
	c, err := src().Lookup(name)
	if err != nil {
		in.logger.Warn("http call refused: unknown cluster", "cluster", name, "error", err)
		return StatusBadArgument
	}
	tok := in.newToken(0)
	if !in.writeU32(u32(s[9]), tok) {
		return StatusInvalidMemoryAccess
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	in.addCallout(tok, cancel)
	req := (&http.Request{Method: method, URL: u, Header: hdr, Host: authority,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	if len(tkeys) > 0 {
		req.Trailer = http.Header{}
		for i := range tkeys {
			req.Trailer.Add(tkeys[i], tvals[i])
		}
	}
	go func() {
		res := doCallout(ctx, c, req)
		in.complete(tok, func(root uint32) {
			in.callResp = res
			in.status, in.statusMsg = res.status, res.msg
			nh, nt := 0, 0
			if res.headers != nil {
				nh = res.headers.Len()
			}
			if res.trailers != nil {
				nt = res.trailers.Len()
			}
			_, _ = in.call(in.fnHTTPResp, root, uint64(root), uint64(tok), uint64(nh), uint64(len(res.body)), uint64(nt))
			in.callResp = nil
			in.status, in.statusMsg = StatusOK, ""
		})
	}()
	return StatusOK
}

// doCallout performs the request and shapes failures as Envoy's async
// client does: connect failure 503, timeout 504, reset → no headers.
func doCallout(ctx context.Context, c *cluster.Cluster, req *http.Request) *httpCallResult {
	resp, _, err := c.RoundTrip(req, "")
	if err != nil {
		var ce *cluster.ConnectError
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return synthetic(504, "upstream request timeout")
		case errors.As(err, &ce), errors.Is(err, cluster.ErrNoHealthyEndpoint):
			return synthetic(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
		}
		return &httpCallResult{status: StatusBrokenConnection, msg: "reset"}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCalloutBody))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return synthetic(504, "upstream request timeout")
		}
		return &httpCallResult{status: StatusBrokenConnection, msg: "reset"}
	}
	h := gateway.NewHeaders(gateway.HeaderField{Name: ":status", Value: strconv.Itoa(resp.StatusCode)})
	for k, vs := range resp.Header {
		for _, v := range vs {
			_ = h.Add(k, v)
		}
	}
	res := &httpCallResult{headers: h, body: b}
	if len(resp.Trailer) > 0 {
		t := gateway.NewHeaders()
		for k, vs := range resp.Trailer {
			for _, v := range vs {
				_ = t.Add(k, v)
			}
		}
		res.trailers = t
	}
	return res
}

func synthetic(status int, body string) *httpCallResult {
	return &httpCallResult{
		headers: gateway.NewHeaders(
			gateway.HeaderField{Name: ":status", Value: strconv.Itoa(status)},
			gateway.HeaderField{Name: "content-type", Value: "text/plain"},
			gateway.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))},
		),
		body: []byte(body),
	}
}

// proxy_redis_init(cluster_ptr, cluster_len, user_ptr, user_len, pass_ptr, pass_len, timeout_ms)
func hcRedisInit(in *Instance, s []uint64) Status {
	name, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	user, ok := in.readString(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	pass, ok := in.readString(u32(s[4]), u32(s[5]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	r := in.plugin.redis
	if r == nil {
		return StatusBadArgument
	}
	if err := r.Init(name, user, pass, time.Duration(u32(s[6]))*time.Millisecond); err != nil {
		in.logger.Warn("redis init refused", "cluster", name, "error", err)
		return StatusBadArgument
	}
	return StatusOK
}

// proxy_redis_call(cluster_ptr, cluster_len, query_ptr, query_len, ret_token_ptr)
func hcRedisCall(in *Instance, s []uint64) Status {
	name, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	query, ok := in.readCopy(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	r := in.plugin.redis
	if r == nil {
		return StatusBadArgument
	}
	tok := in.newToken(3)
	if !in.writeU32(u32(s[4]), tok) {
		return StatusInvalidMemoryAccess
	}
	ctx, cancel := context.WithCancel(context.Background())
	pc := in.addCallout(tok, cancel)
	err := r.Call(ctx, name, query, func(status int, reply []byte) {
		in.complete(tok, func(root uint32) {
			if status == 0 && reply == nil {
				reply = []byte{}
			}
			in.redisReply = reply
			_, _ = in.call(in.fnRedisResp, root, uint64(root), uint64(tok), uint64(uint32(status)), uint64(len(reply)))
			in.redisReply = nil
		})
	})
	if err != nil {
		in.dropCallout(tok, pc)
		in.logger.Warn("redis call refused", "cluster", name, "error", err)
		return StatusBadArgument
	}
	return StatusOK
}
