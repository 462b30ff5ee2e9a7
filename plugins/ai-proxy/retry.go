package main

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pdk"
)

// This file is retryOnFailure (plugins-C.md §6.7): when the provider
// answers a status matching retryOnStatus, the response is held and the
// request the provider got is sent again through the route's cluster with
// another token, up to maxRetries times. A 200 becomes the client's answer
// (translated as usual; a streamed answer arrives in one piece); otherwise
// the original failed response goes on, normalised like any provider
// error.

const detailRetried = pluginName + ".retry_succeeded"

func retryOn(r *request, status string) bool {
	rc := r.p.RetryOnFailure
	return rc != nil && rc.Enabled && r.sentPath != "" && statusMatches(rc.onStatus, status)
}

// startRetry sends the next retry; false when no retry is left (no retries
// or no untried token) or the host refused the call.
func startRetry(ctx *pdk.Context, r *request) bool {
	rc := r.p.RetryOnFailure
	if r.retries >= rc.MaxRetries {
		return false
	}
	if len(r.tried) == 0 {
		r.tried = append(r.tried, r.token)
	}
	var left []string
	for _, t := range r.p.APITokens {
		if !slices.Contains(r.tried, t) {
			left = append(left, t)
		}
	}
	if len(left) == 0 {
		return false
	}
	token := left[rand.IntN(len(left))]
	r.retries++
	r.tried = append(r.tried, token)
	headers := [][2]string{{"content-type", "application/json"}}
	if r.stream {
		headers = append(headers, [2]string{"accept", "text/event-stream"})
	}
	set, _ := r.p.authHeaders(token)
	headers = append(headers, set...)
	host := r.p.host
	if host == "" {
		host = ctx.Host()
	}
	client := pdk.HTTPClient{Cluster: pdk.Cluster{Name: ctx.ClusterName(), Host: host}}
	err := client.Call(ctx.Method(), r.sentPath, headers, r.sentBody, func(resp *pdk.HTTPResponse) {
		onRetryResponse(ctx, r, token, resp)
	}, time.Duration(rc.RetryTimeout)*time.Millisecond)
	if err != nil {
		ctx.Log().Warnf("retry: %v", err)
		return false
	}
	return true
}

func onRetryResponse(ctx *pdk.Context, r *request, token string, resp *pdk.HTTPResponse) {
	status := strconv.Itoa(resp.Status)
	recordOutcome(ctx, r.p, token, status)
	if resp.Status != 200 {
		if retryOn(r, status) && startRetry(ctx, r) {
			return
		}
		_ = ctx.ResumeResponse()
		return
	}
	ct, _ := resp.Header("content-type")
	body, err := translateWhole(r, resp.Body, strings.Contains(ct, "text/event-stream"))
	if err != nil {
		ctx.Log().Warnf("retry: translate the answer: %v", err)
		_ = ctx.ResumeResponse()
		return
	}
	if ct == "" {
		ct = "application/json"
	}
	r.replied = true
	ctx.Reply(pdk.Reply{Status: 200, Details: detailRetried, Headers: [][2]string{{"content-type", ct}}, Body: body})
}

// translateWhole translates a complete answer (JSON or a whole event
// stream) for the client.
func translateWhole(r *request, body []byte, sse bool) ([]byte, error) {
	if !r.toClaude && !r.claudeClient {
		return body, nil
	}
	if !sse {
		var err error
		if r.toClaude {
			if body, err = claudeResponseToOpenAI(body, r.model); err != nil {
				return nil, err
			}
		}
		if r.claudeClient {
			return openAIResponseToClaude(body, r.originalModel)
		}
		return body, nil
	}
	var p pdk.SSEParser
	evs := append(p.Feed(body), p.Flush()...)
	if r.toClaude {
		body = newClaudeToOpenAIStream(r.model).events(evs, true)
		var p2 pdk.SSEParser
		evs = append(p2.Feed(body), p2.Flush()...)
	}
	if r.claudeClient {
		body = newOpenAIToClaudeStream(r.originalModel).events(evs, true)
	}
	return body, nil
}
