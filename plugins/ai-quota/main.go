// Command ai-quota is a Proxy-Wasm plugin that enforces a token allowance
// per consumer, kept in Redis under <redis_key_prefix><consumer>: an LLM
// request is rejected when the consumer's quota is used up, and the tokens
// a response reports (prompt + completion, streaming or not) are taken
// off it. An admin consumer queries, sets and adjusts quotas through
// endpoints under the chat route. See README.md; the behaviour is
// shared/spec/plugins-B.md §1, with the fixes listed there.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (make plugins).
package main

import (
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

const pluginName = "ai-quota"

// consumerHeader names the consumer an auth plugin identified.
const consumerHeader = "x-mse-consumer"

// Response-code details of the local replies (Higress's, plus bad_request).
const (
	detailNoKey        = "ai-quota.no_key"
	detailUnauthorized = "ai-quota.unauthorized"
	detailNoQuota      = "ai-quota.noquota"
	detailError        = "ai-quota.error"
	detailBadRequest   = "ai-quota.bad_request"
	detailRefresh      = "ai-quota.refreshquota"
	detailQuery        = "ai-quota.queryquota"
	detailDelta        = "ai-quota.deltaquota"
)

// Reply bodies (Higress's texts where Higress has the case).
const (
	msgNoKey         = "Request denied by ai quota check. No Key Authentication information found."
	msgUnauthorized  = "Request denied by ai quota check. Unauthorized consumer."
	msgNotAdmin      = "Request denied by ai quota check. Unauthorized admin consumer."
	msgEmptyConsumer = "Request denied by ai quota check. consumer can't be empty."
	msgNoQuota       = "Request denied by ai quota check, No quota left"
	msgBadRefresh    = "Request denied by ai quota check. consumer can't be empty and quota must be integer."
	msgBadDelta      = "Request denied by ai quota check. consumer can't be empty and value must be integer."
	msgRefreshed     = "refresh quota successful"
	msgDelta         = "delta quota successful"
)

// Metric name suffixes (the counter names are route.<route>.upstream.
// <cluster>.model.none.consumer.<consumer>.metric.<suffix>).
const (
	metricRejected   = "quota_rejected_count"
	metricRedisError = "quota_redis_error"
)

// valueState is the key of the request's requestState.
const valueState = "state"

// requestState is what the plugin keeps for one request, stored once (one
// ctx.SetValue per request, no boxing per field).
type requestState struct {
	mode     mode
	consumer string
	usage    pdk.Usage
	hasUsage bool
	charged  bool
}

// state returns the request's state, nil when the request headers did not
// store one (no consumer: the request was answered at once).
func state(ctx *pdk.Context) *requestState {
	v, _ := ctx.Value(valueState)
	st, _ := v.(*requestState)
	return st
}

var plugin = pdk.Plugin[*config]{
	Name:                    pluginName,
	Parse:                   parseConfig,
	OnRequestHeaders:        onRequestHeaders,
	OnRequestBody:           onRequestBody,
	OnStreamingResponseBody: onResponseBody,
	OnStreamDone:            onStreamDone,
}

func init() { pdk.Register(&plugin) }

func main() {}

// textReply is a text/plain local reply.
func textReply(status int, details, body string) pdk.Reply {
	return pdk.Reply{
		Status:  status,
		Details: details,
		Headers: [][2]string{{"content-type", "text/plain; charset=utf-8"}},
		Body:    []byte(body),
	}
}

// onRequestHeaders identifies the consumer, then checks its quota
// (completion mode) or serves the admin endpoints.
func onRequestHeaders(ctx *pdk.Context, cfg *config) pdk.Action {
	ctx.DisableReroute()
	consumer, ok := ctx.RequestHeader(consumerHeader)
	if !ok {
		return ctx.Reply(textReply(401, detailNoKey, msgNoKey))
	}
	if consumer == "" {
		return ctx.Reply(textReply(403, detailUnauthorized, msgUnauthorized))
	}
	m := cfg.mode(ctx.Path())
	st := &requestState{mode: m, consumer: consumer}
	ctx.SetValue(valueState, st)
	if log := ctx.Log(); log.Enabled(pdk.LevelDebug) {
		log.Debugf("mode %s, consumer %s", m, consumer)
	}
	switch m {
	case modeNone:
		return pdk.Continue
	case modeCompletion:
		ctx.DontReadRequestBody()
		return checkQuota(ctx, cfg, st)
	}
	if consumer != cfg.AdminConsumer {
		return ctx.Reply(textReply(403, detailUnauthorized, msgNotAdmin))
	}
	if m == modeQuery {
		return queryQuota(ctx, cfg, st)
	}
	if !ctx.HasRequestBody() {
		field := "quota"
		if m == modeDelta {
			field = "value"
		}
		return ctx.Reply(textReply(400, detailBadRequest,
			"Request denied by ai quota check. The request has no body: send consumer=<name>&"+field+"=<integer> as application/x-www-form-urlencoded."))
	}
	ctx.BufferRequestBody()
	return pdk.Pause
}

// checkQuota lets the request through when the consumer has quota left.
// Redis failures deny the request (503): without the store the quota
// cannot be enforced.
func checkQuota(ctx *pdk.Context, cfg *config, st *requestState) pdk.Action {
	consumer := st.consumer
	cmd := make([]byte, 0, len(cfg.getHead)+len(cfg.RedisKeyPrefix)+len(consumer)+16)
	cmd = append(cmd, cfg.getHead...)
	cmd = pdk.AppendRedisBulkString(cmd, cfg.RedisKeyPrefix, consumer)
	err := cfg.client.Send(cmd, func(v pdk.RedisValue) {
		if v.IsError() {
			storeFailed(ctx, cfg, st, v.Err())
			return
		}
		var quota int64
		if !v.IsNull() {
			n, err := v.Int()
			if err != nil {
				storeFailed(ctx, cfg, st, pdk.Errorf("", "the quota of %s is not an integer (%q)", consumer, v.String()))
				return
			}
			quota = n
		}
		if log := ctx.Log(); log.Enabled(pdk.LevelDebug) {
			log.Debugf("consumer %s has quota %d", consumer, quota)
		}
		if quota <= 0 {
			pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", consumer, metricRejected), 1)
			ctx.Reply(textReply(403, detailNoQuota, msgNoQuota))
			return
		}
		_ = ctx.ResumeRequest()
	})
	if err != nil {
		return storeFailed(ctx, cfg, st, err)
	}
	return pdk.StopAllWatermark
}

// storeFailed denies a request whose quota could not be read.
func storeFailed(ctx *pdk.Context, cfg *config, st *requestState, err error) pdk.Action {
	ctx.Log().Errorf("quota check failed, denying the request: %v", err)
	pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", st.consumer, metricRedisError), 1)
	return ctx.Reply(textReply(503, detailError, "Request denied by ai quota check. The quota store is unavailable: "+err.Error()))
}

// queryQuota answers GET …/quota?consumer=<name> with the quota.
func queryQuota(ctx *pdk.Context, cfg *config, st *requestState) pdk.Action {
	who := queryParam(ctx.Path(), "consumer")
	if who == "" {
		return ctx.Reply(textReply(403, detailUnauthorized, msgEmptyConsumer))
	}
	err := cfg.client.Get(cfg.RedisKeyPrefix+who, func(v pdk.RedisValue) {
		if v.IsError() {
			adminFailed(ctx, cfg, st, v.Err())
			return
		}
		var quota int64
		if !v.IsNull() {
			n, err := v.Int()
			if err != nil {
				adminFailed(ctx, cfg, st, pdk.Errorf("", "the quota of %s is not an integer (%q)", who, v.String()))
				return
			}
			quota = n
		}
		body := `{"consumer":` + strconv.Quote(who) + `,"quota":` + strconv.FormatInt(quota, 10) + `}`
		ctx.Reply(pdk.Reply{Status: 200, Details: detailQuery,
			Headers: [][2]string{{"content-type", "application/json"}}, Body: []byte(body)})
	})
	if err != nil {
		return adminFailed(ctx, cfg, st, err)
	}
	return pdk.Pause
}

// adminFailed answers an admin request whose Redis command failed.
func adminFailed(ctx *pdk.Context, cfg *config, st *requestState, err error) pdk.Action {
	ctx.Log().Errorf("quota admin command failed: %v", err)
	pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", st.consumer, metricRedisError), 1)
	return ctx.Reply(textReply(503, detailError, "redis error:"+err.Error()))
}

// onRequestBody serves refresh (set a quota) and delta (adjust it).
func onRequestBody(ctx *pdk.Context, cfg *config, body []byte) pdk.Action {
	st := state(ctx)
	if st == nil || (st.mode != modeRefresh && st.mode != modeDelta) {
		return pdk.Continue
	}
	mode := st.mode
	if st.consumer != cfg.AdminConsumer {
		return ctx.Reply(textReply(403, detailUnauthorized, msgNotAdmin))
	}
	form, err := parseAdminBody(ctx.ContentType(), body)
	if err != nil {
		return ctx.Reply(textReply(400, detailBadRequest, "Request denied by ai quota check. "+err.Error()))
	}
	field, bad := "quota", msgBadRefresh
	if mode == modeDelta {
		field, bad = "value", msgBadDelta
	}
	who := form["consumer"]
	n, err := strconv.ParseInt(strings.TrimSpace(form[field]), 10, 64)
	if who == "" || err != nil {
		return ctx.Reply(textReply(403, detailUnauthorized, bad))
	}
	key := cfg.RedisKeyPrefix + who
	done := func(details, msg string) func(pdk.RedisValue) {
		return func(v pdk.RedisValue) {
			if v.IsError() {
				adminFailed(ctx, cfg, st, v.Err())
				return
			}
			ctx.Log().Infof("quota of %s: %s %d by %s", who, mode, n, cfg.AdminConsumer)
			ctx.Reply(textReply(200, details, msg))
		}
	}
	switch {
	case mode == modeRefresh:
		err = cfg.client.Set(key, n, done(detailRefresh, msgRefreshed))
	case n >= 0:
		err = cfg.client.IncrBy(key, n, done(detailDelta, msgDelta))
	default:
		err = cfg.client.DecrBy(key, -n, done(detailDelta, msgDelta))
	}
	if err != nil {
		return adminFailed(ctx, cfg, st, err)
	}
	return pdk.Pause
}

// onResponseBody follows a completion's usage; at its end the tokens are
// taken off the consumer's quota. The body passes unchanged.
func onResponseBody(ctx *pdk.Context, cfg *config, chunk []byte, eos bool) []byte {
	st := state(ctx)
	if st == nil || st.mode != modeCompletion || ctx.RepliedLocally() {
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
	if st := state(ctx); st != nil && st.mode == modeCompletion && !ctx.RepliedLocally() {
		charge(ctx, cfg, st)
	}
}

// charge sends DECRBY <prefix><consumer> <prompt + completion tokens>,
// once per request. The quota may go negative; the next request is then
// denied.
func charge(ctx *pdk.Context, cfg *config, st *requestState) {
	if st.charged {
		return
	}
	u, consumer := st.usage, st.consumer
	tokens := u.InputTokens + u.OutputTokens
	if !st.hasUsage || u.TotalTokens <= 0 || tokens <= 0 || consumer == "" {
		return
	}
	st.charged = true
	cmd := make([]byte, 0, len(cfg.decrByHead)+len(cfg.RedisKeyPrefix)+len(consumer)+48)
	cmd = append(cmd, cfg.decrByHead...)
	cmd = pdk.AppendRedisBulkString(cmd, cfg.RedisKeyPrefix, consumer)
	cmd = pdk.AppendRedisBulkInt(cmd, tokens)
	err := cfg.client.Send(cmd, func(v pdk.RedisValue) {
		if v.IsError() {
			ctx.Log().Errorf("taking %d tokens off the quota of %s failed: %v", tokens, consumer, v.Err())
			pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", consumer, metricRedisError), 1)
			return
		}
		if log := ctx.Log(); log.Enabled(pdk.LevelDebug) {
			log.Debugf("took %d tokens off the quota of %s: %s left", tokens, consumer, v.String())
		}
	})
	if err != nil {
		ctx.Log().Errorf("taking %d tokens off the quota of %s not sent: %v", tokens, consumer, err)
		pdk.IncrementCounter(cfg.metrics.Consumer(ctx, "", consumer, metricRedisError), 1)
	}
}
