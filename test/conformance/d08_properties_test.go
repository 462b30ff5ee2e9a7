package conformance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/config"
)

// Checklist D.8: the properties plugins read (route_name and cluster_name,
// also after an earlier plugin re-routed the request, source.address,
// request.protocol, response.code_details, plugin_name, plugin_vm_memory),
// set_property through the per-request store (visible to later plugins and
// to the access log's ai_log), and the special keys with host effects:
// clear_route_cache, set_decoder_buffer_limit / set_encoder_buffer_limit,
// trace_span_tag.*, wasm_need_rebuild.

// d8StartGatewaySpec is startGateway with more Gateway spec fields (YAML
// lines indented by two spaces, e.g. "  tracing: {enabled: true}").
func d8StartGatewaySpec(t *testing.T, gatewaySpec, resources string) *gw {
	t.Helper()
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	for {
		i := strings.Index(resources, "{{wasm ")
		if i < 0 {
			break
		}
		j := strings.Index(resources[i:], "}}")
		name := strings.TrimSpace(resources[i+len("{{wasm ") : i+j])
		resources = resources[:i] + wasmURL(t, name) + resources[i+j+2:]
	}
	yaml := fmt.Sprintf(`apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: conformance}
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "127.0.0.1:0"}
  accessLog: {path: %q}
  shutdownTimeout: 5s
%s
---
%s`, access, gatewaySpec, resources)
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(file)
	if err != nil {
		t.Fatalf("config:\n%v\n--- yaml ---\n%s", err, yaml)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := app.Options{Logger: logger, WasmCacheDir: cacheDir, PoolSize: 2, LogLevel: func() slog.Level { return slog.LevelInfo }}
	a, err := app.New(context.Background(), snap, o)
	if err != nil {
		t.Fatalf("app: %v\n--- log ---\n%s", err, logs.String())
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start: %v\n--- log ---\n%s", err, logs.String())
	}
	g := &gw{t: t, app: a, URL: "http://" + a.Gateway().Addr("main"), Admin: "http://" + a.AdminAddr(), logs: logs, access: access}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("--- gateway log ---\n%s", logs.String())
			if b, err := os.ReadFile(access); err == nil {
				t.Logf("--- access log ---\n%s", b)
			}
		}
	})
	return g
}

// d8Route is a Route document; match is the flow-style body of
// spec.match ("" matches everything).
func d8Route(name, cluster, match string) string {
	m := ""
	if match != "" {
		m = "\n  match: {" + match + "}"
	}
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Route
metadata: {name: %s}
spec:
  cluster: %s%s
`, name, cluster, m)
}

func d8Priority(p int) string { return fmt.Sprintf("  priority: %d\n", p) }

// TestD8StreamProperties: the standard attributes a plugin reads during a
// request, over HTTP/1.1 and HTTP/2 (h2c).
func TestD8StreamProperties(t *testing.T) {
	up := newUpstream(t)
	cfg := `{"on": {
	  "request_headers": [
	    {"op": "property_to_header", "path": ["route_name"], "header": "x-route-name"},
	    {"op": "property_to_header", "path": ["cluster_name"], "header": "x-cluster-name"},
	    {"op": "property_to_header", "path": ["source", "address"], "header": "x-source-address"},
	    {"op": "property_to_header", "path": ["request", "protocol"], "header": "x-protocol"},
	    {"op": "property_to_header", "path": ["plugin_name"], "header": "x-plugin-name"},
	    {"op": "property_to_header", "path": ["plugin_root_id"], "header": "x-plugin-root-id"},
	    {"op": "get_property", "path": "plugin_vm_memory", "encoding": "u64le", "to": "header:x-vm-memory"},
	    {"op": "get_property", "path": "plugin_vm_memory", "encoding": "len", "to": "header:x-vm-memory-len"},
	    {"op": "get_property", "path": ["response", "code_details"], "status": "header:x-details-before-response"}],
	  "response_headers": [
	    {"op": "property_to_header", "path": ["response", "code_details"], "header": "x-code-details"},
	    {"op": "get_property", "path": ["response", "code"], "encoding": "u64le", "to": "header:x-response-code"}]}}`
	g := startGateway(t, clusterAndRoute(up)+d8Route("unused", "up", `path: {exact: "/never"}`)+
		d12ProbeDoc("d8props", cfg, "  pluginName: d8-root\n"))

	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(strings.ReplaceAll(proto, "/", ""), func(t *testing.T) {
			tr := &http.Transport{}
			if proto == "HTTP/2" {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			t.Cleanup(tr.CloseIdleConnections)
			var local string
			req, err := http.NewRequest("GET", g.URL+"/props?x=1", nil)
			if err != nil {
				t.Fatal(err)
			}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) { local = ci.Conn.LocalAddr().String() },
			}))
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != int(proto[5]-'0') {
				t.Fatalf("status %d over %s, want 200 over %s", resp.StatusCode, resp.Proto, proto)
			}
			h := d12LastSeen(t, up).Header
			want := map[string]string{
				"x-route-name":              "main",
				"x-cluster-name":            d6EnvoyName("up", up.Addr()),
				"x-source-address":          local,
				"x-protocol":                proto,
				"x-plugin-name":             "d8props",
				"x-plugin-root-id":          "d8-root",
				"x-vm-memory-len":           "8",
				"x-details-before-response": "1",
			}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			mem, err := strconv.ParseUint(h.Get("x-vm-memory"), 10, 64)
			if err != nil || mem%65536 != 0 || mem < 1<<20 || mem > 1<<30 {
				t.Errorf("plugin_vm_memory = %q, want a whole number of 64 KiB pages between 1 MiB and 1 GiB", h.Get("x-vm-memory"))
			}
			if got := resp.Header.Get("x-code-details"); got != "via_upstream" {
				t.Errorf("response.code_details = %q, want via_upstream", got)
			}
			if got := resp.Header.Get("x-response-code"); got != "200" {
				t.Errorf("response.code = %q, want 200", got)
			}
		})
	}

	// A local reply: code_details is its details, whitespace as '_'.
	t.Run("local-reply", func(t *testing.T) {
		up := newUpstream(t)
		cfg := `{"on": {
		  "request_headers": [{"op": "send_local_response", "code": 418, "body": "teapot", "details": "d8 local\treply"}],
		  "response_headers": [
		    {"op": "property_to_header", "path": ["response", "code_details"], "header": "x-code-details"},
		    {"op": "get_property", "path": ["response", "code"], "encoding": "u64le", "to": "header:x-response-code"}]}}`
		g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d8local", cfg, ""))
		resp, _ := g.Do("GET", "/local", "")
		if resp.StatusCode != 418 {
			t.Fatalf("status %d, want 418", resp.StatusCode)
		}
		if got := resp.Header.Get("x-code-details"); got != "d8_local_reply" {
			t.Errorf("response.code_details = %q, want d8_local_reply", got)
		}
		if got := resp.Header.Get("x-response-code"); got != "418" {
			t.Errorf("response.code = %q, want 418", got)
		}
	})
}

// TestD8RouteAfterReroute: an earlier plugin that changes :path so that
// another route matches re-routes the request; the next plugin reads the
// new route_name and cluster_name and the request goes to the new route's
// cluster — unless the earlier plugin set clear_route_cache=off first
// (ai-proxy's DisableReroute), which keeps the route; any other value
// turns re-routing back on.
func TestD8RouteAfterReroute(t *testing.T) {
	cases := []struct {
		name  string
		steps string // p1's steps before the :path change
		want  string // route of the request
	}{
		{"reroute", "", "other"},
		{"clear_route_cache=off", `{"op": "set_property", "path": "clear_route_cache", "value": "off", "status": "header:x-crc-status"},`, "main"},
		{"clear_route_cache=off-then-on", `{"op": "set_property", "path": "clear_route_cache", "value": "off"},
		  {"op": "set_property", "path": "clear_route_cache", "value": "on"},`, "other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			up2 := newUpstream(t)
			p1 := `{"on": {"request_headers": [` + c.steps + `
			  {"op": "property_to_header", "path": "route_name", "header": "x-p1-route"},
			  {"op": "set_header", "key": ":path", "value": "/rerouted"}]}}`
			p2 := `{"on": {"request_headers": [
			  {"op": "property_to_header", "path": "route_name", "header": "x-p2-route"},
			  {"op": "property_to_header", "path": "cluster_name", "header": "x-p2-cluster"}]}}`
			g := startGateway(t, d6ClusterDoc("up", up.Addr())+d6ClusterDoc("up2", up2.Addr())+
				d8Route("other", "up2", `path: {exact: "/rerouted"}`)+d8Route("main", "up", `path: {prefix: "/"}`)+
				d12ProbeDoc("d8p1", p1, d8Priority(100))+d12ProbeDoc("d8p2", p2, d8Priority(50)))

			resp, body := g.Do("GET", "/original", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			target, other, cluster := up2, up, d6EnvoyName("up2", up2.Addr())
			if c.want == "main" {
				target, other, cluster = up, up2, d6EnvoyName("up", up.Addr())
			}
			if n := len(other.Requests()); n != 0 {
				t.Fatalf("the %s route's cluster got %d requests, want none", map[bool]string{true: "main", false: "other"}[c.want != "main"], n)
			}
			r := d12LastSeen(t, target)
			if r.Path != "/rerouted" {
				t.Errorf("upstream path %q, want /rerouted", r.Path)
			}
			want := map[string]string{"x-p1-route": "main", "x-p2-route": c.want, "x-p2-cluster": cluster}
			if strings.HasPrefix(c.steps, `{"op": "set_property", "path": "clear_route_cache", "value": "off", "status"`) {
				want["x-crc-status"] = "0"
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			eventually(t, 10*time.Second, "the access-log line", func() bool { return len(g.AccessLog()) == 1 })
			if got := g.AccessLog()[0]["route"]; got != c.want {
				t.Errorf("access log route %v, want %s", got, c.want)
			}
		})
	}
}

// TestD8SetPropertyRoundTrip: set_property writes the per-request store:
// the plugin reads its value back, a later plugin reads it, it lasts into
// the response and the log phase, and ai_log set in proxy_on_log is the
// access log's ai_log (plugins' on_log runs before the access log is
// written). The key is the raw path: the same name split into two segments
// is another key. Outside a stream (configure) set_property is NOT_FOUND.
func TestD8SetPropertyRoundTrip(t *testing.T) {
	up := newUpstream(t)
	p1 := `{"on": {
	  "configure": [{"op": "set_property", "path": "d8.root", "value": "x", "status": "var:root.cfg_set"}],
	  "request_headers": [
	    {"op": "get_var", "name": "root.cfg_set", "to": "header:x-configure-set-status"},
	    {"op": "get_property", "path": "d8.custom", "status": "header:x-unset-status"},
	    {"op": "set_property", "path": "d8.custom", "value": "v1", "status": "header:x-set-status"},
	    {"op": "property_to_header", "path": "d8.custom", "header": "x-own-read"},
	    {"op": "set_property", "path": "ai_log", "value": "{\"d8\":\"from-request\"}"}],
	  "log": [
	    {"op": "get_property", "path": "ai_log", "to": "log:ai_log_in_log"},
	    {"op": "set_property", "path": "ai_log", "value": "{\"d8\":\"from-log\",\"n\":2}", "status": "log:ai_log_set"}]}}`
	p2 := `{"on": {
	  "request_headers": [
	    {"op": "property_to_header", "path": "d8.custom", "header": "x-later-read"},
	    {"op": "get_property", "path": ["d8", "custom"], "status": "header:x-split-status"},
	    {"op": "property_to_header", "path": "ai_log", "header": "x-later-ai-log"},
	    {"op": "set_property", "path": "d8.from_p2", "value": "v2"}],
	  "response_headers": [
	    {"op": "property_to_header", "path": "d8.custom", "header": "x-response-read"},
	    {"op": "property_to_header", "path": "d8.from_p2", "header": "x-response-read-p2"}]}}`
	g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d8set1", p1, d8Priority(100))+d12ProbeDoc("d8set2", p2, d8Priority(50)))

	resp, body := g.Do("GET", "/props", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := d12LastSeen(t, up).Header
	for k, v := range map[string]string{
		"x-configure-set-status": "1",
		"x-unset-status":         "1",
		"x-set-status":           "0",
		"x-own-read":             "v1",
		"x-later-read":           "v1",
		"x-split-status":         "1",
		"x-later-ai-log":         `{"d8":"from-request"}`,
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := resp.Header.Get("x-response-read"); got != "v1" {
		t.Errorf("d8.custom read in the response phase = %q, want v1", got)
	}
	if got := resp.Header.Get("x-response-read-p2"); got != "v2" {
		t.Errorf("d8.from_p2 (set by the later plugin) read by it in the response phase = %q, want v2", got)
	}
	eventually(t, 10*time.Second, "the access-log line", func() bool { return len(g.AccessLog()) == 1 })
	ai, ok := g.AccessLog()[0]["ai_log"].(map[string]any)
	if !ok || ai["d8"] != "from-log" || ai["n"] != float64(2) {
		t.Errorf("access log ai_log = %v, want {\"d8\":\"from-log\",\"n\":2} as set in proxy_on_log", g.AccessLog()[0]["ai_log"])
	}
	if !strings.Contains(g.logs.String(), `ai_log_in_log={\"d8\":\"from-request\"}`) && !strings.Contains(g.logs.String(), `ai_log_in_log={"d8":"from-request"}`) {
		t.Errorf("proxy_on_log did not read ai_log set during the request; log:\n%s", g.logs.String())
	}
}

// TestD8BufferLimits: set_decoder_buffer_limit / set_encoder_buffer_limit
// set the per-stream buffering limit of a plugin that accumulates a body
// (returns StopIterationAndBuffer until end of stream): over it the
// request gets 413, the response 500; a large enough limit lets the same
// body through. A value that is not a number is BAD_ARGUMENT.
func TestD8BufferLimits(t *testing.T) {
	const bodySize = 200_000 // several 32 KiB chunks
	big := strings.Repeat("b", bodySize)
	for _, c := range []struct {
		name   string
		limit  string
		status int
	}{
		{"request-over", "65536", http.StatusRequestEntityTooLarge},
		{"request-under", "1048576", http.StatusOK},
		{"response-over", "65536", http.StatusInternalServerError},
		{"response-under", "1048576", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			var cfg string
			if strings.HasPrefix(c.name, "request") {
				cfg = `{"on": {
				  "request_headers": [
				    {"op": "set_property", "path": "set_decoder_buffer_limit", "value": "lots", "status": "header:x-bad-limit"},
				    {"op": "set_property", "path": "set_decoder_buffer_limit", "value": "` + c.limit + `", "status": "header:x-limit"}],
				  "request_body": {"steps": [{"op": "callback_arg", "arg": "body_size", "to": "header:x-body-size", "when": "eos"}],
				                   "action": "pause_until_eos"}}}`
			} else {
				up.Handle = func(w http.ResponseWriter, r *http.Request, body []byte) {
					w.Header().Set("Content-Length", strconv.Itoa(bodySize))
					_, _ = io.WriteString(w, big)
				}
				cfg = `{"on": {
				  "response_headers": {"steps": [
				    {"op": "set_property", "path": "set_encoder_buffer_limit", "value": "-1", "status": "header:x-bad-limit"},
				    {"op": "set_property", "path": "set_encoder_buffer_limit", "value": "` + c.limit + `", "status": "header:x-limit"}],
				    "action": "pause"},
				  "response_body": {"action": "pause_until_eos"}}}`
			}
			g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d8limit", cfg, ""))
			resp, body := g.Do("POST", "/limit", big)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, c.status, body)
			}
			switch c.name {
			case "request-over":
				if n := len(up.Requests()); n != 0 {
					t.Errorf("upstream got %d requests, want none", n)
				}
			case "request-under":
				r := d12LastSeen(t, up)
				if len(r.Body) != bodySize || r.Header.Get("x-body-size") != strconv.Itoa(bodySize) ||
					r.Header.Get("x-limit") != "0" || r.Header.Get("x-bad-limit") != "2" {
					t.Errorf("upstream got %d body bytes, x-body-size %q, x-limit %q, x-bad-limit %q; want %d, %d, 0, 2",
						len(r.Body), r.Header.Get("x-body-size"), r.Header.Get("x-limit"), r.Header.Get("x-bad-limit"), bodySize, bodySize)
				}
			case "response-under":
				if len(body) != bodySize {
					t.Errorf("client got %d body bytes, want %d", len(body), bodySize)
				}
				if resp.Header.Get("x-limit") != "0" || resp.Header.Get("x-bad-limit") != "2" {
					t.Errorf("x-limit %q, x-bad-limit %q; want 0 and 2", resp.Header.Get("x-limit"), resp.Header.Get("x-bad-limit"))
				}
			}
		})
	}
}

// d8OTLPSink is an OTLP/HTTP traces endpoint that keeps the spans it gets.
type d8OTLPSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func d8NewOTLPSink(t *testing.T) *d8OTLPSink {
	c := &d8OTLPSink{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				c.spans = append(c.spans, ss.GetSpans()...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// attributes returns the string attributes of every span exported so far.
func (c *d8OTLPSink) attributes() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]string
	for _, s := range c.spans {
		m := map[string]string{}
		for _, a := range s.GetAttributes() {
			m[a.GetKey()] = a.GetValue().GetStringValue()
		}
		out = append(out, m)
	}
	return out
}

// TestD8TraceSpanTag: set_property("trace_span_tag.<name>", v) puts the
// attribute <name>=v on the request's server span, as exported over OTLP.
func TestD8TraceSpanTag(t *testing.T) {
	col := d8NewOTLPSink(t)
	up := newUpstream(t)
	cfg := `{"on": {
	  "request_headers": [{"op": "set_property", "path": "trace_span_tag.d8.model", "value": "m-42", "status": "header:x-tag-status"}],
	  "log": [{"op": "set_property", "path": "trace_span_tag.d8.tokens", "value": "17"}]}}`
	g := d8StartGatewaySpec(t, `  tracing: {enabled: true, endpoint: "`+col.srv.URL+`/v1/traces", serviceName: d8}`,
		clusterAndRoute(up)+d12ProbeDoc("d8trace", cfg, ""))
	resp, body := g.Do("GET", "/traced", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := d12LastSeen(t, up).Header.Get("x-tag-status"); got != "0" {
		t.Errorf("set_property trace_span_tag.d8.model: status %q, want 0", got)
	}
	eventually(t, 10*time.Second, "the access-log line", func() bool { return len(g.AccessLog()) == 1 })
	// Shutting down flushes the batch of spans.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.app.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	var found map[string]string
	for _, attrs := range col.attributes() {
		if attrs["sluice.route"] == "main" {
			found = attrs
		}
	}
	if found == nil {
		t.Fatalf("no exported server span for the request; spans: %v", col.attributes())
	}
	if found["d8.model"] != "m-42" || found["d8.tokens"] != "17" {
		t.Errorf("span attributes %v, want d8.model=m-42 and d8.tokens=17 (set in on_log)", found)
	}
	if _, ok := found["trace_span_tag.d8.model"]; ok {
		t.Errorf("span attribute named with the trace_span_tag. prefix: %v", found)
	}
}

// TestD8WasmNeedRebuild: a plugin that sets wasm_need_rebuild=true gets
// its instance replaced once the stream ends
// (sluice_wasm_recycles_total), without failing a request: later
// requests are served by new instances.
func TestD8WasmNeedRebuild(t *testing.T) {
	up := newUpstream(t)
	cfg := `{"on": {
	  "configure": [` + d12InstanceIDSteps + `],
	  "request_headers": [
	    {"op": "get_var", "name": "root.id", "to": "header:x-instance"},
	    {"op": "set_property", "path": "wasm_need_rebuild", "value": "true", "when": "stream:1", "status": "header:x-rebuild-status"}]}}`
	g := startGateway(t, clusterAndRoute(up)+d12ProbeDoc("d8rebuild", cfg, ""))
	labels := []string{"plugin", "d8rebuild"}
	if v, ok := d12Metric(t, g, "sluice_wasm_recycles_total", labels...); ok && v != 0 {
		t.Fatalf("sluice_wasm_recycles_total = %v before any request", v)
	}
	seen := map[string]bool{}
	do := func() {
		t.Helper()
		resp, body := g.Do("GET", "/rebuild", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		r := d12LastSeen(t, up)
		seen[r.Header.Get("x-instance")] = true
		if st := r.Header.Get("x-rebuild-status"); st != "" && st != "0" {
			t.Fatalf("set_property wasm_need_rebuild: status %q, want 0", st)
		}
	}
	do()
	d12WaitMetric(t, g, 20*time.Second, "an instance recycled on request",
		func(v float64, ok bool) bool { return ok && v >= 1 }, "sluice_wasm_recycles_total", labels...)
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) <= 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after recycling, requests were served by only %d instance ids %v; want a new instance", len(seen), seen)
		}
		do()
	}
	if n, _ := d12Metric(t, g, "sluice_wasm_instances", labels...); n != 2 {
		t.Errorf("sluice_wasm_instances = %v, want the pool size 2", n)
	}
}
