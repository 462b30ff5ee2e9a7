// Command probe is a scriptable Proxy-Wasm plugin for host conformance
// tests, written on the raw-ABI Go SDK (proxy-wasm-go-sdk, Higress fork).
//
// Its plugin configuration says, per callback, which steps to run (hostcalls,
// WASI probes, crashes) and which action to return; results are written to
// headers, logs, properties, shared data or variables so a test can observe
// them. The configuration language is documented in ../../README.md.
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// Go 1.24+ c-shared reactor: the host runs _initialize, which runs init.
func init() {
	proxywasm.SetVMContext(&vmContext{})
}

func main() {}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &rootContext{
		id:      id,
		cfg:     &config{},
		vars:    map[string]string{},
		metrics: map[string]uint32{},
		queues:  map[string]uint32{},
		calls:   map[string]int{},
	}
}

// rootContext is one plugin configuration in this instance.
type rootContext struct {
	types.DefaultPluginContext
	id      uint32
	cfg     *config
	vars    map[string]string // "root." variables and variables of root callbacks
	metrics map[string]uint32 // metric name -> id, per instance
	queues  map[string]uint32 // queue name -> id
	calls   map[string]int    // invocations per root callback
	streams int               // stream contexts created so far
}

func (r *rootContext) OnPluginStart(configSize int) types.OnPluginStartStatus {
	data, st := getBuffer(bufferNames["plugin_configuration"], 0, maxSize)
	if st != statusOK && st != statusNotFound {
		hostLog(4, "probe: reading the plugin configuration: status "+statusText(st))
		return types.OnPluginStartStatusFailed
	}
	cfg, err := parseConfig(data)
	if err != nil {
		hostLog(4, err.Error())
		return types.OnPluginStartStatusFailed
	}
	r.cfg = cfg
	e := r.env("configure", true)
	e.args["config_size"] = itoa(int64(configSize))
	e.runCallback()
	if cb := cfg.On["configure"]; cb != nil && cb.Result != nil && !*cb.Result {
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (r *rootContext) OnPluginDone() bool {
	r.env("done", true).runCallback()
	if cb := r.cfg.On["done"]; cb != nil && cb.Result != nil {
		return *cb.Result
	}
	return true
}

func (r *rootContext) OnQueueReady(queueID uint32) {
	e := r.env("queue_ready", true)
	e.args["queue_id"] = itoa(int64(queueID))
	e.runCallback()
}

func (r *rootContext) OnTick() {
	r.env("tick", true).runCallback()
}

func (r *rootContext) NewHttpContext(id uint32) types.HttpContext {
	r.streams++
	return &streamContext{root: r, id: id, seq: r.streams, vars: map[string]string{}, calls: map[string]int{}}
}

// env builds the environment of a root callback.
func (r *rootContext) env(callback string, eos bool) *env {
	r.calls[callback]++
	return &env{
		root: r, callback: callback, eos: eos, call: r.calls[callback],
		args:   map[string]string{"context_id": itoa(int64(r.id)), "root_id": itoa(int64(r.id))},
		defBuf: defaultBuffer(callback),
	}
}

// streamContext is one HTTP stream.
type streamContext struct {
	types.DefaultHttpContext
	root  *rootContext
	id    uint32
	seq   int // 1 for the first stream of this root in this instance
	vars  map[string]string
	calls map[string]int
}

func (s *streamContext) env(callback string, eos bool) *env {
	s.calls[callback]++
	e := &env{
		root: s.root, stream: s, callback: callback, eos: eos, call: s.calls[callback],
		args: map[string]string{"context_id": itoa(int64(s.id)), "root_id": itoa(int64(s.root.id)),
			"stream_seq": itoa(int64(s.seq)), "eos": boolText(eos)},
		defBuf: defaultBuffer(callback),
	}
	if len(callback) > 9 && callback[:9] == "response_" {
		e.dir = 1
	}
	return e
}

func (s *streamContext) OnHttpRequestHeaders(numHeaders int, eos bool) types.Action {
	e := s.env("request_headers", eos)
	e.args["num_headers"] = itoa(int64(numHeaders))
	return e.runCallback()
}

func (s *streamContext) OnHttpRequestBody(bodySize int, eos bool) types.Action {
	e := s.env("request_body", eos)
	e.args["body_size"] = itoa(int64(bodySize))
	return e.runCallback()
}

func (s *streamContext) OnHttpRequestTrailers(numTrailers int) types.Action {
	e := s.env("request_trailers", true)
	e.args["num_trailers"] = itoa(int64(numTrailers))
	return e.runCallback()
}

func (s *streamContext) OnHttpResponseHeaders(numHeaders int, eos bool) types.Action {
	e := s.env("response_headers", eos)
	e.args["num_headers"] = itoa(int64(numHeaders))
	return e.runCallback()
}

func (s *streamContext) OnHttpResponseBody(bodySize int, eos bool) types.Action {
	e := s.env("response_body", eos)
	e.args["body_size"] = itoa(int64(bodySize))
	return e.runCallback()
}

func (s *streamContext) OnHttpResponseTrailers(numTrailers int) types.Action {
	e := s.env("response_trailers", true)
	e.args["num_trailers"] = itoa(int64(numTrailers))
	return e.runCallback()
}

// OnHttpStreamDone is proxy_on_log for the stream.
func (s *streamContext) OnHttpStreamDone() {
	s.env("log", true).runCallback()
}

func defaultBuffer(callback string) uint32 {
	switch callback {
	case "response_headers", "response_body", "response_trailers":
		return bufferNames["response_body"]
	case "configure":
		return bufferNames["plugin_configuration"]
	case "http_call_response":
		return bufferNames["http_call_response_body"]
	case "redis_call_response":
		return bufferNames["redis_call_response"]
	}
	return bufferNames["request_body"]
}
