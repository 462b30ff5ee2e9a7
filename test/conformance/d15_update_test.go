package conformance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/internal/app"
	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/wasmhost"
	"github.com/sluicegw/sluice/internal/wasmhost/wasmtest"
)

// D.15: configuration and code updates at the host level (file-based hot
// reload is a later issue, so the test drives internal/wasmhost directly and
// hands the gateway its chain through app.Options.Chain).
//
// Config update: every live instance gets a new root context; streams in
// flight finish on the old root, which then gets on_done/on_delete; a
// rejected configuration keeps the old one serving and does not block other
// plugins. Code update: a new Plugin from another module takes new
// streams, the old one drains (its streams finish) and then closes.

// dxHost is a Wasm runtime with its own services, metrics and log, for
// tests that build plugins themselves.
type dxHost struct {
	t       *testing.T
	rt      *wasmhost.Runtime
	svc     *wasmhost.Services
	reg     *prometheus.Registry
	logs    *syncBuffer
	chain   atomic.Pointer[[]gateway.FilterFactory]
	plugins []*wasmhost.Plugin
	mu      sync.Mutex
}

func newDXHost(t *testing.T) *dxHost {
	t.Helper()
	h := &dxHost{t: t, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := wasmhost.NewRuntime(context.Background(), wasmhost.RuntimeOptions{CacheDir: cacheDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var mem func() map[string][]uint64
	h.svc = &wasmhost.Services{
		Shared:   wasmhost.NewShared(),
		Metrics:  wasmhost.NewMetrics(h.reg, func() map[string][]uint64 { return mem() }),
		LogLevel: func() slog.Level { return slog.LevelInfo },
		Logger:   logger,
	}
	mem = func() map[string][]uint64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		out := map[string][]uint64{}
		for _, p := range h.plugins {
			_, m := p.Instances()
			out[p.Name()] = append(out[p.Name()], m...)
		}
		return out
	}
	h.rt = rt
	empty := []gateway.FilterFactory{}
	h.chain.Store(&empty)
	// Registered before the gateway starts, so it runs after its shutdown.
	t.Cleanup(func() {
		h.mu.Lock()
		ps := h.plugins
		h.mu.Unlock()
		for _, p := range ps {
			p.Close(context.Background())
		}
		_ = rt.Close(context.Background())
		if t.Failed() {
			t.Logf("--- host log ---\n%s", h.logs.String())
		}
	})
	return h
}

// plugin compiles a test plugin and builds it with spec.
func (h *dxHost) plugin(wasm string, spec wasmhost.PluginSpec) (*wasmhost.Plugin, error) {
	h.t.Helper()
	mod, err := h.rt.Compile(context.Background(), wasmtest.Plugin(h.t, wasm))
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := wasmhost.NewPlugin(context.Background(), h.rt, mod, spec, h.svc)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.plugins = append(h.plugins, p)
	h.mu.Unlock()
	return p, nil
}

func (h *dxHost) mustPlugin(wasm string, spec wasmhost.PluginSpec) *wasmhost.Plugin {
	h.t.Helper()
	p, err := h.plugin(wasm, spec)
	if err != nil {
		h.t.Fatalf("plugin %s: %v\n--- host log ---\n%s", spec.Name, err, h.logs.String())
	}
	return p
}

// setChain makes new streams use fs.
func (h *dxHost) setChain(fs ...gateway.FilterFactory) { h.chain.Store(&fs) }

// start runs a gateway whose chain is h's.
func (h *dxHost) start(u *upstream) *gw {
	return startGateway(h.t, clusterAndRoute(u), func(o *app.Options) {
		o.Chain = func(*gateway.Stream) []gateway.FilterFactory { return *h.chain.Load() }
	})
}

func (h *dxHost) records() []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if line != "" {
			out = append(out, dxParseLogfmt(line))
		}
	}
	return out
}

// find returns the records whose msg is msg and, when plugin/instance are
// not empty, of that plugin/instance.
func (h *dxHost) find(msg, plugin, instance string) []map[string]string {
	var out []map[string]string
	for _, r := range h.records() {
		if r["msg"] == msg && (plugin == "" || r["plugin"] == plugin) && (instance == "" || r["instance"] == instance) {
			out = append(out, r)
		}
	}
	return out
}

// dxSSE is an upstream that streams /stream responses chunk by chunk as the
// test sends them, and echoes everything else.
type dxSSE struct {
	*upstream
	next chan string
}

func newDXSSE(t *testing.T) *dxSSE {
	s := &dxSSE{upstream: newUpstream(t), next: make(chan string)}
	s.Handle = func(w http.ResponseWriter, r *http.Request, body []byte) {
		fl := w.(http.Flusher)
		if !strings.HasPrefix(r.URL.Path, "/stream") {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "path=%s x-config=%s x-c-path=%s\n", r.URL.Path, r.Header.Get("X-Config"), r.Header.Get("X-C-Path"))
			fl.Flush()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl.Flush()
		for {
			select {
			case c, ok := <-s.next:
				if !ok {
					return
				}
				fmt.Fprintf(w, "data: %s\n\n", c)
				fl.Flush()
			case <-r.Context().Done():
				return
			}
		}
	}
	return s
}

// send makes the (single) in-flight stream emit chunk c; close ends it.
func (s *dxSSE) send(t *testing.T, c string) {
	t.Helper()
	select {
	case s.next <- c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no upstream stream took chunk %q", c)
	}
}

// dxStream is a streaming response being read by the client.
type dxStream struct {
	resp *http.Response
	mu   sync.Mutex
	text strings.Builder
	err  error // how reading ended (io.EOF: a complete response)
	done chan struct{}
}

func dxOpenStream(t *testing.T, g *gw, path string, headers ...string) *dxStream {
	t.Helper()
	req, err := http.NewRequest("GET", g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stream %s: %v", path, err)
	}
	s := &dxStream{resp: resp, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		rd := bufio.NewReader(resp.Body)
		buf := make([]byte, 4096)
		for {
			n, err := rd.Read(buf)
			s.mu.Lock()
			s.text.Write(buf[:n])
			if err != nil {
				s.err = err
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

func (s *dxStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text.String()
}

// waitFor waits until the client has read sub.
func (s *dxStream) waitFor(t *testing.T, sub string) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%q in the streamed response", sub), func() bool {
		return strings.Contains(s.String(), sub)
	})
}

// waitEnd waits until the response ended and returns how (io.EOF for a
// complete response).
func (s *dxStream) waitEnd(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("stream did not end; read so far: %q", s.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// d15Config is a probe configuration that marks requests and responses
// with its version, and logs its root's lifecycle.
func d15Config(version string) []byte {
	return []byte(fmt.Sprintf(`{"name": %[1]q, "on": {
  "configure": [{"op": "alloc", "mib": 1, "to": "log:kept_mib"},
                {"op": "callback_arg", "arg": "root_id", "to": "log:configured_root"}],
  "request_headers": [{"op": "set_header", "key": "x-config", "value": %[1]q},
                      {"op": "get_header", "key": "x-d15-tag", "to": "log:tag"}],
  "response_headers": [{"op": "remove_header", "key": "content-length"},
                       {"op": "set_header", "key": "x-config-resp", "value": %[1]q},
                       {"op": "callback_arg", "arg": "root_id", "to": "header:x-root-id"}],
  "response_body": [{"op": "append_body", "value": "[%[1]s]"}],
  "done": [{"op": "callback_arg", "arg": "root_id", "to": "log:root_done"}]
}}`, version))
}

// d15Tagged returns the instance of the stream that logged tag.
func d15Tagged(t *testing.T, h *dxHost, plugin, version, tag string) (instance string) {
	t.Helper()
	var recs []map[string]string
	eventually(t, 5*time.Second, "the stream tagged "+tag+" in the log", func() bool {
		recs = h.find("probe["+version+"]: tag="+tag, plugin, "")
		return len(recs) > 0
	})
	return recs[0]["instance"]
}

func TestD15ConfigUpdateKeepsInFlightStreamsOnTheOldRoot(t *testing.T) {
	h := newDXHost(t)
	live := h.mustPlugin("go/probe", wasmhost.PluginSpec{Name: "live", Config: d15Config("v1"), PoolSize: 2})
	other := h.mustPlugin("go/probe", wasmhost.PluginSpec{Name: "other", PoolSize: 1,
		Config: []byte(`{"name": "q1", "on": {"response_headers": [{"op": "set_header", "key": "x-other", "value": "q1"}]}}`)})
	h.setChain(live, other)
	u := newDXSSE(t)
	g := h.start(u.upstream)

	resp, body := g.Do("GET", "/plain/before", "")
	if resp.Header.Get("X-Config-Resp") != "v1" || !strings.Contains(body, "x-config=v1") || !strings.HasSuffix(body, "[v1]") {
		t.Fatalf("before the update: x-config-resp %q, body %q; want v1 everywhere", resp.Header.Get("X-Config-Resp"), body)
	}

	// A stream in flight on v1.
	s := dxOpenStream(t, g, "/stream/1", "x-d15-tag", "s1")
	if got := s.resp.Header.Get("X-Config-Resp"); got != "v1" {
		t.Fatalf("stream response header x-config-resp = %q, want v1", got)
	}
	u.send(t, "one")
	s.waitFor(t, "data: one\n\n[v1]")
	streamInst := d15Tagged(t, h, "live", "v1", "s1")

	if _, err := live.UpdateConfig(context.Background(), d15Config("v2")); err != nil {
		t.Fatalf("UpdateConfig v2: %v", err)
	}

	// Both live instances got a new root: configure ran again in the same
	// instance (the VM-global allocation of the first root is still there).
	for _, inst := range []string{"1", "2"} {
		if n := len(h.find("probe[v2]: kept_mib=2", "live", inst)); n != 1 {
			t.Errorf("instance %s: %d v2 configures in the same VM (kept_mib=2), want 1", inst, n)
		}
	}
	// The idle instance retires its v1 root at once; the stream's instance
	// keeps it.
	idleInst := map[string]string{"1": "2", "2": "1"}[streamInst]
	eventually(t, 5*time.Second, "v1 root done on the idle instance", func() bool {
		return len(h.find("probe[v1]: root_done=1", "live", idleInst)) == 1
	})

	// New requests use v2, on every instance.
	for i := 0; i < 4; i++ {
		resp, body := g.Do("GET", fmt.Sprintf("/plain/after/%d", i), "")
		if resp.Header.Get("X-Config-Resp") != "v2" || !strings.Contains(body, "x-config=v2") || !strings.HasSuffix(body, "[v2]") {
			t.Fatalf("after the update: x-config-resp %q, body %q; want v2 everywhere", resp.Header.Get("X-Config-Resp"), body)
		}
		if resp.Header.Get("X-Root-Id") == "1" {
			t.Errorf("after the update a stream ran on root 1 (the v1 root)")
		}
	}

	// The stream in flight still runs on v1.
	u.send(t, "two")
	s.waitFor(t, "data: two\n\n[v1]")
	if strings.Contains(s.String(), "[v2]") {
		t.Fatalf("the in-flight stream switched to v2: %q", s.String())
	}
	if n := len(h.find("probe[v1]: root_done=1", "live", streamInst)); n != 0 {
		t.Fatalf("the v1 root of instance %s was retired while its stream was in flight", streamInst)
	}
	close(u.next)
	if err := s.waitEnd(t); err != io.EOF {
		t.Fatalf("the stream ended with %v, want a complete response", err)
	}
	// (The end-of-stream body callback may append once more.)
	if got := s.String(); !strings.HasPrefix(got, "data: one\n\n[v1]data: two\n\n[v1]") || strings.Count(got, "[") != strings.Count(got, "[v1]") {
		t.Errorf("streamed body %q, want every chunk marked [v1] only", got)
	}
	eventually(t, 5*time.Second, "v1 root done on the stream's instance after the stream ended", func() bool {
		return len(h.find("probe[v1]: root_done=1", "live", streamInst)) == 1
	})

	// A configuration the plugin rejects: an error naming the plugin, the
	// old configuration keeps serving, its root is not retired.
	for _, bad := range []string{
		`{"name": "bad", "on": {"configure": {"steps": [], "result": false}}}`,
		`{"name": "bad", "unknown_field": true}`,
	} {
		_, err := live.UpdateConfig(context.Background(), []byte(bad))
		if err == nil {
			t.Fatalf("UpdateConfig(%s) succeeded, want an error", bad)
		}
		if !strings.Contains(err.Error(), "live") {
			t.Errorf("UpdateConfig error %q does not name the plugin", err)
		}
		t.Logf("rejected configuration: %v", err)
	}
	for i := 0; i < 4; i++ {
		resp, body := g.Do("GET", fmt.Sprintf("/plain/after-bad/%d", i), "")
		if resp.Header.Get("X-Config-Resp") != "v2" || !strings.HasSuffix(body, "[v2]") {
			t.Fatalf("after a rejected update: x-config-resp %q, body %q; want v2", resp.Header.Get("X-Config-Resp"), body)
		}
	}
	for _, r := range h.records() {
		if strings.HasPrefix(r["msg"], "probe[v2]: root_done=") {
			t.Errorf("a rejected update retired the serving v2 root: %v", r)
		}
	}
	// Another plugin's update is not blocked by the rejected one.
	if _, err := other.UpdateConfig(context.Background(), []byte(`{"name": "q2", "on": {"response_headers": [{"op": "set_header", "key": "x-other", "value": "q2"}]}}`)); err != nil {
		t.Fatalf("other plugin's UpdateConfig: %v", err)
	}
	resp, _ = g.Do("GET", "/plain/other", "")
	if resp.Header.Get("X-Other") != "q2" || resp.Header.Get("X-Config-Resp") != "v2" {
		t.Errorf("after updating the other plugin: x-other %q, x-config-resp %q; want q2 and v2", resp.Header.Get("X-Other"), resp.Header.Get("X-Config-Resp"))
	}
	if strings.Contains(h.logs.String(), "plugin instance crashed") {
		t.Errorf("an instance crashed during the updates")
	}
}

func TestD15CodeUpdateDrainsTheOldPlugin(t *testing.T) {
	h := newDXHost(t)
	old := h.mustPlugin("go/probe", wasmhost.PluginSpec{Name: "code", Config: d15Config("old"), PoolSize: 2})
	h.setChain(old)
	u := newDXSSE(t)
	g := h.start(u.upstream)

	s := dxOpenStream(t, g, "/stream/code", "x-d15-tag", "s2")
	u.send(t, "one")
	s.waitFor(t, "data: one\n\n[old]")

	// New code: another module under the same plugin name takes new streams.
	fresh := h.mustPlugin("c/addheader", wasmhost.PluginSpec{Name: "code", PoolSize: 2})
	h.setChain(fresh)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		old.Drain(ctx)
	}()

	resp, body := g.Do("GET", "/plain/new-code", "")
	if !strings.Contains(body, "x-c-path=/plain/new-code") || strings.Contains(body, "x-config=old") || strings.Contains(body, "[old]") || resp.Header.Get("X-Config-Resp") != "" {
		t.Fatalf("a new request after the code update: %q (x-config-resp %q); want only the new module's effect", body, resp.Header.Get("X-Config-Resp"))
	}

	// The old plugin drains: its stream goes on, its instances stay.
	select {
	case <-drained:
		t.Fatal("Drain returned while a stream was still pinned to the old plugin")
	default:
	}
	if n, _ := old.Instances(); n != 2 {
		t.Fatalf("old plugin has %d live instances while draining, want 2", n)
	}
	u.send(t, "two")
	s.waitFor(t, "data: two\n\n[old]")
	close(u.next)
	if err := s.waitEnd(t); err != io.EOF {
		t.Fatalf("the stream ended with %v, want a complete response", err)
	}
	// (The end-of-stream body callback may append once more.)
	if got := s.String(); !strings.HasPrefix(got, "data: one\n\n[old]data: two\n\n[old]") || strings.Count(got, "[") != strings.Count(got, "[old]") {
		t.Errorf("streamed body %q, want every chunk marked [old] only", got)
	}

	// Once the stream is gone the old instances close.
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatal("Drain did not return after the last stream ended")
	}
	if n, _ := old.Instances(); n != 0 {
		t.Errorf("old plugin has %d live instances after draining, want 0", n)
	}
	if v, _ := dxGather(t, h.reg.Gather, "sluice_wasm_instances", "plugin", "code"); v != 2 {
		t.Errorf("sluice_wasm_instances{plugin=code} = %v after the drain, want 2 (the new module's)", v)
	}
	resp, body = g.Do("GET", "/plain/after-drain", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "x-c-path=/plain/after-drain") {
		t.Errorf("after the drain: %d %q", resp.StatusCode, body)
	}
}
