// Command ai-token-ratelimit is a Proxy-Wasm plugin that limits how many
// LLM tokens a rule group or each of its keys (a header, query parameter,
// cookie, consumer or client IP) may use per second, minute, hour or day.
// Windows are fixed and kept in Redis: the request phase rejects a request
// whose window is used up, the response phase charges the tokens the
// response reports (prompt + completion, streaming or not). See README.md;
// the behaviour is shared/spec/plugins-B.md §2, with the fixes listed
// there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"strconv"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-token-ratelimit"

// Response-code details of the rejection.
const detailRejected = pluginName + ".rejected"

// resetHeader carries the seconds until the window resets, on rejections.
const resetHeader = "X-TokenRateLimit-Reset"

// Attribute written to ai_log on rejection, and its value.
const (
	attrStatus    = "token_ratelimit_status"
	statusLimited = "limited"
)

// Metric name suffixes (the counter names are route.<route>.upstream.
// <cluster>.model.none.consumer.<consumer>.metric.<suffix>).
const (
	metricRejected   = "token_ratelimit_count"
	metricRedisError = "token_ratelimit_redis_error"
)

// valueState is the key of the request's requestState.
const valueState = "state"

// requestState is what the plugin keeps for one request, stored once (one
// ctx.SetValue per request, no boxing per field).
type requestState struct {
	req      hostRequest // here, not apart: one allocation per request
	consumer string      // x-mse-consumer ("" when absent)
	limited  bool        // a limit applies: b is the request's window
	b        bucket
	charged  bool // the response was charged, or nothing is to be charged
	usage    pdk.Usage
	hasUsage bool
}

// state returns the request's state, nil when the request headers did not
// store one.
func state(ctx *pdk.Context) *requestState {
	v, _ := ctx.Value(valueState)
	st, _ := v.(*requestState)
	return st
}

// Scripts prepared once: their EVAL commands' constant part is encoded at
// start-up.
var (
	checkEval  = pdk.NewRedisScript(checkScript, 1)
	chargeEval = pdk.NewRedisScript(chargeScript, 1)
)

var plugin = pdk.Plugin[*config]{
	Name:                    pluginName,
	Parse:                   parseConfig,
	OnRequestHeaders:        onRequestHeaders,
	OnStreamingResponseBody: onResponseBody,
	OnStreamDone:            onStreamDone,
}

func init() { pdk.Register(&plugin) }

func main() {}

// hostRequest reads the request through the kit for lookup. The consumer
// header, which every consumer item reads, is read once.
type hostRequest struct {
	ctx         *pdk.Context
	consumer    string
	hasConsumer bool
}

func (r *hostRequest) header(name string) (string, bool) {
	if name == consumerHeader {
		return r.consumer, r.hasConsumer
	}
	return r.ctx.RequestHeader(name)
}

func (r *hostRequest) path() string { return r.ctx.Path() }
func (r *hostRequest) remoteAddress() string {
	v, _ := r.ctx.Property("source", "address")
	return v
}

// onRequestHeaders finds the request's window and asks Redis how much of
// it is used; the request waits for the answer.
func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	ctx.DisableReroute()
	st := &requestState{req: hostRequest{ctx: ctx}}
	req := &st.req
	req.consumer, req.hasConsumer = ctx.RequestHeader(consumerHeader)
	st.consumer = req.consumer
	ctx.SetValue(valueState, st)
	b, ok := cfg.lookup(req)
	if !ok {
		ctx.Log().Debug("no limit applies to this request")
		return pdk.Continue
	}
	st.limited, st.b = true, b
	err := cfg.client.Send(b.command(checkEval, false, 0), func(v pdk.RedisValue) {
		used, ttl, err := windowReply(v)
		if err != nil {
			ctx.Log().Errorf("token rate limit check of %s failed, letting the request through: %v", b.key(), err)
			countRedisError(ctx, cfg, st)
			_ = ctx.ResumeRequest()
			return
		}
		if used >= b.count {
			reject(ctx, cfg, st, used, ttl)
			return
		}
		_ = ctx.ResumeRequest()
	})
	if err != nil {
		ctx.Log().Errorf("token rate limit check of %s not sent, letting the request through: %v", b.key(), err)
		countRedisError(ctx, cfg, st)
		return pdk.Continue
	}
	return pdk.StopAllWatermark
}

// reject answers the request with rejected_code and rejected_msg.
func reject(ctx *pdk.Context, cfg *config, st *requestState, used, ttl int64) {
	b := st.b
	if log := ctx.Log(); log.Enabled(pdk.LevelInfo) {
		log.Infof("token rate limit %s reached (%d of %d tokens used), rejecting", b.key(), used, b.count)
	}
	st.charged = true // nothing to charge for a rejected request
	ctx.SetAttribute(attrStatus, statusLimited)
	if err := ctx.WriteAILog(); err != nil {
		ctx.Log().Warnf("write ai_log: %v", err)
	}
	pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", st.consumer, metricRejected), 1)
	ctx.Reply(pdk.Reply{
		Status:  cfg.RejectedCode,
		Details: detailRejected,
		Headers: [][2]string{{resetHeader, strconv.FormatInt(ttl, 10)}, {"content-type", "text/plain; charset=utf-8"}},
		Body:    []byte(cfg.RejectedMsg),
	})
}

// onResponseBody follows the response's usage; at its end the tokens are
// charged. The body passes unchanged.
func onResponseBody(ctx *pdk.Context, cfg *config, chunk []byte, eos bool) []byte {
	st := state(ctx)
	if st == nil || !st.limited || ctx.RepliedLocally() {
		return chunk
	}
	if u, changed := ctx.TrackUsage(chunk, eos); changed {
		st.usage, st.hasUsage = u, true
	}
	if eos {
		charge(ctx, cfg, st)
	}
	return chunk
}

// onStreamDone charges a response whose body did not end with an
// end-of-stream chunk (trailers, or a reset after the usage arrived).
func onStreamDone(ctx *pdk.Context, cfg *config) {
	if st := state(ctx); st != nil && st.limited && !ctx.RepliedLocally() {
		charge(ctx, cfg, st)
	}
}

// charge adds the response's prompt and completion tokens to the window,
// once per request.
func charge(ctx *pdk.Context, cfg *config, st *requestState) {
	if st.charged || !st.limited {
		return
	}
	u, b := st.usage, st.b
	tokens := u.InputTokens + u.OutputTokens
	if !st.hasUsage || u.TotalTokens <= 0 || tokens <= 0 {
		return
	}
	st.charged = true
	err := cfg.client.Send(b.command(chargeEval, true, tokens), func(v pdk.RedisValue) {
		used, _, err := windowReply(v)
		if err != nil {
			ctx.Log().Errorf("charging %d tokens to %s failed: %v", tokens, b.key(), err)
			countRedisError(ctx, cfg, st)
			return
		}
		if log := ctx.Log(); log.Enabled(pdk.LevelDebug) {
			log.Debugf("charged %d tokens to %s: %d of %d used", tokens, b.key(), used, b.count)
		}
	})
	if err != nil {
		ctx.Log().Errorf("charging %d tokens to %s not sent: %v", tokens, b.key(), err)
		countRedisError(ctx, cfg, st)
	}
}

// windowReply reads a script's {limit, used, ttl} reply.
func windowReply(v pdk.RedisValue) (used, ttl int64, err error) {
	if err := v.Err(); err != nil {
		return 0, 0, err
	}
	arr := v.Array()
	if len(arr) != 3 {
		return 0, 0, pdk.Errorf("", "unexpected redis reply (want [limit, used, ttl]): %c %q with %d elements", v.Kind(), v.String(), len(arr))
	}
	if used, err = arr[1].Int(); err != nil {
		return 0, 0, err
	}
	if ttl, err = arr[2].Int(); err != nil {
		return 0, 0, err
	}
	return used, ttl, nil
}

// countRedisError counts a Redis failure (the request went through).
func countRedisError(ctx *pdk.Context, cfg *config, st *requestState) {
	pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", st.consumer, metricRedisError), 1)
}
