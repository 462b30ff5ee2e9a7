package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/plugins"
)

// chainPlugins is a chain of two probes configured from one generation:
// "a" (first) tags the request and the response with x-a-req/x-a-resp and
// holds the request on an HTTP callout to the cluster "slow" before it
// continues; "b" tags them with x-b-req/x-b-resp. The upstream echoes the
// request tags as x-seen-a/x-seen-b. Both log "probe[<name>-<tag>]:
// root_done=<id>" when a root context of theirs ends.
func chainPlugins(tag string) []pluginSpec {
	set := func(k, v string) map[string]any { return map[string]any{"op": "set_header", "key": k, "value": v} }
	done := []any{map[string]any{"op": "callback_arg", "arg": "root_id", "to": "log:root_done"}}
	a := map[string]any{"name": "a-" + tag, "on": map[string]any{
		"request_headers": map[string]any{"steps": []any{
			set("x-a-req", tag),
			map[string]any{"op": "http_call", "cluster": "slow", "timeout_ms": 15000,
				"headers": [][]string{{":method", "GET"}, {":path", "/hold"}, {":authority", "slow"}},
				"then":    []any{map[string]any{"op": "continue_stream", "stream": "request"}}},
		}, "action": "stop_all_watermark"},
		"response_headers": []any{set("x-a-resp", tag)},
		"done":             done,
	}}
	b := map[string]any{"name": "b-" + tag, "on": map[string]any{
		"request_headers":  []any{set("x-b-req", tag)},
		"response_headers": []any{set("x-b-resp", tag)},
		"done":             done,
	}}
	raw := func(v any) string {
		out, _ := json.Marshal(v)
		return string(out)
	}
	// Equal priorities keep declaration order: a, then b.
	return []pluginSpec{{name: "a", mod: probe, raw: raw(a)}, {name: "b", mod: probe, raw: raw(b)}}
}

// TestReloadChainKeepsOneGeneration is issue 5's "every request sees the
// old or the new behaviour, never a mix within one request" across
// plugins: a request of the old generation is held in plugin a (on a
// callout) while a reload changes the configuration of a and b, so it
// reaches b only after b was reconfigured. It must still run b with the
// old configuration, in every phase; requests after the reload run both
// with the new one.
func TestReloadChainKeepsOneGeneration(t *testing.T) {
	var (
		holding atomic.Bool
		arrived = make(chan struct{}, 1)
		release = make(chan struct{})
	)
	holding.Store(true)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if holding.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-req.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slow.Close)
	extra := fmt.Sprintf("---\napiVersion: sluice.dev/v1alpha1\nkind: Cluster\nmetadata: {name: slow}\nspec: {endpoints: [{address: %q}]}\n", slow.Listener.Addr().String())
	r := newRig(t, rigConfig{plugins: chainPlugins("v1"), extra: extra})

	type result struct {
		resp *http.Response
		err  error
	}
	held := make(chan result, 1)
	go func() {
		resp, err := r.http.Get(r.url("/held"))
		if err == nil {
			resp.Body.Close()
		}
		held <- result{resp, err}
	}()
	select {
	case <-arrived:
	case res := <-held:
		t.Fatalf("the request was not held on a's callout: %+v", res)
	case <-time.After(waitLimit):
		t.Fatal("plugin a's callout never reached the slow server")
	}

	res, err := r.reload(rigConfig{plugins: chainPlugins("v2"), extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if got := outcome(t, res, name); got.Action != plugins.OutcomeConfigUpdated {
			t.Fatalf("reload: plugin %s %+v, want %s", name, got, plugins.OutcomeConfigUpdated)
		}
	}

	// The old generation still holds b's old version: its roots stay.
	if n := strings.Count(r.logs.String(), "probe[b-v1]: root_done="); n != 0 {
		t.Errorf("%d root contexts of b's old configuration retired while a request of the old generation had yet to reach b", n)
	}

	// The held request of the old generation reaches b now.
	holding.Store(false)
	close(release)
	var h result
	select {
	case h = <-held:
	case <-time.After(waitLimit):
		t.Fatal("the held request did not finish")
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	want := map[string]string{"X-Seen-A": "v1", "X-Seen-B": "v1", "X-A-Resp": "v1", "X-B-Resp": "v1"}
	for k, v := range want {
		if got := h.resp.Header.Get(k); got != v {
			t.Errorf("held request of the old generation: %s = %q, want %q (a mix of configurations)", k, got, v)
		}
	}

	// Once that request is done, the old generation is released and the
	// old version's roots retire, in both instances of both plugins.
	for _, name := range []string{"a", "b"} {
		eventually(t, name+"'s old roots to retire", func() bool {
			return strings.Count(r.logs.String(), "probe["+name+"-v1]: root_done=") == 2
		})
	}

	// New requests run the new generation in both plugins.
	resp, err := r.http.Get(r.url("/after"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k := range want {
		if got := resp.Header.Get(k); got != "v2" {
			t.Errorf("request after the reload: %s = %q, want v2", k, got)
		}
	}
}
