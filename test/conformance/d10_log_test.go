package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// D.10: proxy_on_log runs for every plugin of the chain — also for plugins
// that never saw the request because an earlier one answered locally —
// before the gateway writes its access log; after it, nothing reaches the
// context again (on_done/on_delete are not scriptable in the probe, but the
// SDK traps on any callback for a context it deleted, which would show as
// a crash).

// d10Trace logs "cb.<callback>=<context id>" so the test can follow every
// stream callback of every context.
func d10Trace(cb string) map[string]any {
	return map[string]any{"op": "callback_arg", "arg": "context_id", "to": "log:cb." + cb}
}

func d10Probe(name string, extra ...map[string]any) map[string]any {
	on := map[string]any{}
	for _, cb := range []string{"request_headers", "request_body", "response_headers", "response_body", "log"} {
		on[cb] = []any{d10Trace(cb)}
	}
	for _, e := range extra {
		for cb, steps := range e {
			on[cb] = append(on[cb].([]any), steps.([]any)...)
		}
	}
	return map[string]any{"name": name, "on": on}
}

func TestD10OnLogForEveryPluginBeforeAccessLog(t *testing.T) {
	// p2 is switched off for host ok.test by a configDisable rule, for its
	// route or for its domain: the host leaves p2 out of that chain.
	for _, tc := range []struct{ name, rule string }{
		{"route rule", "{ingress: [quiet], configDisable: true}"},
		{"domain rule", "{domain: [ok.test], configDisable: true}"},
	} {
		t.Run(tc.name, func(t *testing.T) { d10OnLog(t, tc.rule) })
	}
}

func d10OnLog(t *testing.T, p2Rule string) {
	u := newUpstream(t)
	// p1 → p2 → p3 on the request path. p2 answers locally, but not for
	// host ok.test (route "quiet"), so requests to ok.test go upstream
	// through p1 and p3 only.
	p1 := d10Probe("p1", map[string]any{"log": []any{
		map[string]any{"op": "set_property", "path": "d10_first", "value": "p1"},
	}})
	p2 := d10Probe("p2", map[string]any{"request_headers": []any{
		map[string]any{"op": "send_local_response", "code": 403, "body": "denied by p2", "details": "p2 denied"},
	}})
	// p3 writes ai_log in on_log from the request's :path, and reports
	// whether p1's on_log (earlier in the chain) already ran.
	p3 := d10Probe("p3", map[string]any{"log": []any{
		map[string]any{"op": "get_header", "map": "request_headers", "key": ":path", "to": "property:ai_log"},
		map[string]any{"op": "get_property", "path": "d10_first", "to": "log:saw_first"},
	}})
	quiet := `---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: quiet}
spec:
  hosts: [ok.test]
  cluster: up
`
	g := startGateway(t, clusterAndRoute(u)+quiet+
		plugin("p1", "go/probe", p1, "  priority: 30\n")+
		plugin("p2", "go/probe", p2, "  priority: 20\n  matchRules: ["+p2Rule+"]\n")+
		plugin("p3", "go/probe", p3, "  priority: 10\n"))

	resp, body := g.Do("GET", "/d10/denied", "", "Host", "deny.test")
	if resp.StatusCode != http.StatusForbidden || body != "denied by p2" {
		t.Fatalf("denied request: %d %q, want 403 from p2", resp.StatusCode, body)
	}
	resp, body = g.Do("GET", "/d10/upstream", "", "Host", "ok.test")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "/d10/upstream") {
		t.Fatalf("upstream request: %d %q", resp.StatusCode, body)
	}
	if n := len(u.Requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1 (the denied one must not reach it)", n)
	}

	// The access log line of each request carries the ai_log p3 wrote in
	// its on_log: on_log ran before the line was written.
	byPath := map[string]map[string]any{}
	eventually(t, 10*time.Second, "two access-log lines", func() bool {
		for _, l := range g.AccessLog() {
			byPath[fmt.Sprint(l["path"])] = l
		}
		return byPath["/d10/denied"] != nil && byPath["/d10/upstream"] != nil
	})
	deniedID, _ := byPath["/d10/denied"]["request_id"].(string)
	okID, _ := byPath["/d10/upstream"]["request_id"].(string)
	if deniedID == "" || okID == "" || deniedID == okID {
		t.Fatalf("request ids %q and %q", deniedID, okID)
	}
	for path, l := range byPath {
		if l["ai_log"] != path {
			t.Errorf("access log of %s: ai_log = %#v, want %q (written by p3's on_log)", path, l["ai_log"], path)
		}
	}
	if d := byPath["/d10/denied"]["response_details"]; d != "p2_denied" {
		t.Errorf("denied request: response_details = %v, want p2_denied", d)
	}

	calls := d10Calls(t, g)
	want := map[string]map[string][]string{
		deniedID: {
			"p1": {"request_headers", "response_headers", "response_body", "log"},
			"p2": {"request_headers", "response_headers", "response_body", "log"},
			"p3": {"log"}, // never saw the request, still logged
		},
		okID: {
			"p1": {"request_headers", "response_headers", "response_body", "log"},
			"p3": {"request_headers", "response_headers", "response_body", "log"},
		},
	}
	for id, byPlugin := range want {
		for pl, seq := range byPlugin {
			got := d10Sequence(calls, id, pl)
			if strings.Join(got, ",") != strings.Join(d10Collapse(seq), ",") {
				t.Errorf("request %s, plugin %s: callbacks %v, want %v", id, pl, got, d10Collapse(seq))
			}
		}
	}
	if got := d10Sequence(calls, okID, "p2"); len(got) != 0 {
		t.Errorf("p2 is disabled for ok.test but got callbacks %v", got)
	}
	// on_log runs in chain order: p3 saw p1's on_log property.
	for _, id := range []string{deniedID, okID} {
		if !d10Logged(g, id, "probe[p3]: saw_first=p1") {
			t.Errorf("request %s: p3's on_log did not see the property p1 set in its on_log", id)
		}
	}

	// More traffic: every context id is used by one stream only, and after
	// a context's on_log nothing else is called for it (the SDK would panic
	// on a callback for a deleted context: the instance would crash).
	for i := 0; i < 6; i++ {
		host := "ok.test"
		if i%2 == 0 {
			host = "deny.test"
		}
		g.Do("GET", fmt.Sprintf("/d10/more/%d", i), "", "Host", host)
	}
	eventually(t, 10*time.Second, "8 access-log lines", func() bool { return len(g.AccessLog()) >= 8 })
	calls = d10Calls(t, g)
	owner := map[string]string{}
	for _, c := range calls {
		key := c.plugin + "/" + c.instance + "/" + c.ctx
		if c.requestID == "" {
			t.Errorf("stream callback %s of %s without a request id", c.callback, key)
			continue
		}
		if prev, ok := owner[key]; ok && prev != c.requestID {
			t.Errorf("context %s used by two requests (%s and %s)", key, prev, c.requestID)
		}
		owner[key] = c.requestID
	}
	seenLog := map[string]bool{}
	for _, c := range calls {
		key := c.plugin + "/" + c.instance + "/" + c.ctx
		if seenLog[key] {
			t.Errorf("context %s got %s after its on_log", key, c.callback)
		}
		if c.callback == "log" {
			seenLog[key] = true
		}
	}
	if len(seenLog) != len(owner) {
		t.Errorf("%d contexts, but only %d got on_log", len(owner), len(seenLog))
	}
	if strings.Contains(g.logs.String(), "plugin instance crashed") {
		t.Errorf("a plugin instance crashed")
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		if v, _ := dxMetric(t, g, "sluice_wasm_crashes_total", "plugin", p); v != 0 {
			t.Errorf("sluice_wasm_crashes_total{plugin=%s} = %v, want 0", p, v)
		}
	}
}

// d10Collapse turns repeated body callbacks into one entry (a body may
// arrive in several chunks).
func d10Collapse(seq []string) []string {
	var out []string
	for _, s := range seq {
		if len(out) > 0 && out[len(out)-1] == s {
			continue
		}
		out = append(out, s)
	}
	return out
}

type d10Call struct {
	plugin, instance, ctx, callback, requestID string
}

// d10Calls returns the traced stream callbacks in log order.
func d10Calls(t *testing.T, g *gw) []d10Call {
	t.Helper()
	var out []d10Call
	for _, l := range dxLogRecords(g) {
		msg := l["msg"]
		if !strings.HasPrefix(msg, "probe[") {
			continue
		}
		_, rest, ok := strings.Cut(msg, "]: cb.")
		if !ok {
			continue
		}
		cb, ctx, ok := strings.Cut(rest, "=")
		if !ok {
			continue
		}
		out = append(out, d10Call{plugin: l["plugin"], instance: l["instance"], ctx: ctx, callback: cb, requestID: l["request_id"]})
	}
	return out
}

// d10Sequence is the callbacks plugin pl got for request id, repeated body
// callbacks collapsed.
func d10Sequence(calls []d10Call, id, pl string) []string {
	var seq []string
	for _, c := range calls {
		if c.requestID == id && c.plugin == pl {
			seq = append(seq, c.callback)
		}
	}
	return d10Collapse(seq)
}

func d10Logged(g *gw, id, msg string) bool {
	for _, l := range dxLogRecords(g) {
		if l["request_id"] == id && l["msg"] == msg {
			return true
		}
	}
	return false
}

// dxLogRecords parses the gateway log (slog text format) into key/value
// records.
func dxLogRecords(g *gw) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if line == "" {
			continue
		}
		out = append(out, dxParseLogfmt(line))
	}
	return out
}

// dxParseLogfmt parses one "k=v k2=\"quoted v\"" line.
func dxParseLogfmt(line string) map[string]string {
	rec := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			break
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(line) {
				end = len(line) - 1
			}
			q := line[:end+1]
			line = line[end+1:]
			if v, err := strconv.Unquote(q); err == nil {
				val = v
			} else {
				val = q
			}
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		rec[key] = val
	}
	return rec
}

// dxMetric returns the value of the sample of metric name whose label key
// equals value (counters, gauges; the sum over matching samples).
func dxMetric(t testing.TB, g *gw, name, key, value string) (float64, bool) {
	t.Helper()
	return dxGather(t, g.app.Registry().Gather, name, key, value)
}

func dxGather(t testing.TB, gather func() ([]*dto.MetricFamily, error), name, key, value string) (float64, bool) {
	t.Helper()
	mfs, err := gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := key == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == key && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			found = true
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum, found
}

// dxMetricSamples returns every sample of a gauge/counter with its labels.
func dxMetricSamples(t testing.TB, gather func() ([]*dto.MetricFamily, error), name string) []dxSample {
	t.Helper()
	mfs, err := gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var out []dxSample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := dxSample{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			}
			out = append(out, s)
		}
	}
	return out
}

type dxSample struct {
	labels map[string]string
	value  float64
}
