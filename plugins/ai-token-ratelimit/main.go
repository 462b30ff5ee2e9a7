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
	"strings"

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

// Per-request values.
const (
	valueBucket   = "bucket"
	valueCharged  = "charged"
	valueUsage    = "usage"
	valueConsumer = "consumer"
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

// hostRequest reads the request through the kit for lookup. The headers
// are read once, as pairs, so a header sent with an empty value is told
// from an absent one.
type hostRequest struct {
	ctx     *pdk.Context
	headers [][2]string
}

func newHostRequest(ctx *pdk.Context) hostRequest {
	hs, _ := ctx.RequestHeaders()
	return hostRequest{ctx: ctx, headers: hs}
}

func (r hostRequest) header(name string) (string, bool) {
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func (r hostRequest) path() string { return r.ctx.Path() }
func (r hostRequest) remoteAddress() string {
	v, _ := r.ctx.Property("source", "address")
	return v
}

// onRequestHeaders finds the request's window and asks Redis how much of
// it is used; the request waits for the answer.
func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	ctx.DisableReroute()
	req := newHostRequest(ctx)
	if consumer, ok := req.header(consumerHeader); ok {
		ctx.SetValue(valueConsumer, consumer)
	}
	b, ok := cfg.lookup(req)
	if !ok {
		ctx.Log().Debugf("no limit applies to this request")
		return pdk.Continue
	}
	ctx.SetValue(valueBucket, b)
	err := cfg.client.Eval(checkScript, 1, []any{b.key}, []any{b.count, b.seconds}, func(v pdk.RedisValue) {
		used, ttl, err := windowReply(v)
		if err != nil {
			ctx.Log().Errorf("token rate limit check of %s failed, letting the request through: %v", b.key, err)
			countRedisError(ctx)
			_ = ctx.ResumeRequest()
			return
		}
		if used >= b.count {
			reject(ctx, cfg, b, used, ttl)
			return
		}
		_ = ctx.ResumeRequest()
	})
	if err != nil {
		ctx.Log().Errorf("token rate limit check of %s not sent, letting the request through: %v", b.key, err)
		countRedisError(ctx)
		return pdk.Continue
	}
	return pdk.StopAllWatermark
}

// reject answers the request with rejected_code and rejected_msg.
func reject(ctx *pdk.Context, cfg *config, b bucket, used, ttl int64) {
	ctx.Log().Infof("token rate limit %s reached (%d of %d tokens used), rejecting", b.key, used, b.count)
	ctx.SetValue(valueCharged, true) // nothing to charge for a rejected request
	ctx.SetAttribute(attrStatus, statusLimited)
	if err := ctx.WriteAILog(); err != nil {
		ctx.Log().Warnf("write ai_log: %v", err)
	}
	pdk.IncrementCounter(metricName(ctx, metricRejected), 1)
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
	if _, ok := ctx.Value(valueBucket); !ok || ctx.RepliedLocally() {
		return chunk
	}
	if u, changed := ctx.TrackUsage(chunk, eos); changed {
		ctx.SetValue(valueUsage, u)
	}
	if eos {
		charge(ctx, cfg)
	}
	return chunk
}

// onStreamDone charges a response whose body did not end with an
// end-of-stream chunk (trailers, or a reset after the usage arrived).
func onStreamDone(ctx *pdk.Context, cfg *config) {
	if _, ok := ctx.Value(valueBucket); ok && !ctx.RepliedLocally() {
		charge(ctx, cfg)
	}
}

// charge adds the response's prompt and completion tokens to the window,
// once per request.
func charge(ctx *pdk.Context, cfg *config) {
	if _, done := ctx.Value(valueCharged); done {
		return
	}
	bv, _ := ctx.Value(valueBucket)
	b, ok := bv.(bucket)
	if !ok {
		return
	}
	uv, _ := ctx.Value(valueUsage)
	u, found := uv.(pdk.Usage)
	tokens := u.InputTokens + u.OutputTokens
	if !found || u.TotalTokens <= 0 || tokens <= 0 {
		return
	}
	ctx.SetValue(valueCharged, true)
	err := cfg.client.Eval(chargeScript, 1, []any{b.key}, []any{b.count, b.seconds, tokens}, func(v pdk.RedisValue) {
		used, _, err := windowReply(v)
		if err != nil {
			ctx.Log().Errorf("charging %d tokens to %s failed: %v", tokens, b.key, err)
			countRedisError(ctx)
			return
		}
		ctx.Log().Debugf("charged %d tokens to %s: %d of %d used", tokens, b.key, used, b.count)
	})
	if err != nil {
		ctx.Log().Errorf("charging %d tokens to %s not sent: %v", tokens, b.key, err)
		countRedisError(ctx)
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
func countRedisError(ctx *pdk.Context) {
	pdk.IncrementCounter(metricName(ctx, metricRedisError), 1)
}

// metricName is Higress's counter naming for this plugin's counters (no
// model: route.<route>.upstream.<cluster>.model.none.consumer.<consumer>.metric.<name>).
func metricName(ctx *pdk.Context, name string) string {
	return pdk.ConsumerMetric(ctx, "", ctx.StringValue(valueConsumer, ""), name)
}
