package wasmhost

import "github.com/sluicegw/sluice/internal/gateway"

// Filter is one plugin's presence in one stream: a stream context in the
// instance the stream is pinned to. It implements gateway.Filter; every
// method runs on the stream's driver goroutine.
type Filter struct {
	p    *Plugin
	h    *gateway.FilterHandle
	in   *Instance // nil when no instance was available
	root uint32    // root context of the stream's configuration version (0: none)
	// startErr is why the stream has no root: its instance died, or the
	// root of its version could not be started there.
	startErr error
	id       uint32 // stream context id, 0 until created
	gone     bool   // context deleted

	failed bool // fail-open: skip this plugin for the rest of the stream

	// body is the buffer of the direction whose body callback runs (or is
	// paused), nil when none is available.
	body [2]*gateway.Buffer
	// phase names the callback running now (logs; map availability in on_log).
	phase string
}

var _ gateway.Filter = (*Filter)(nil)

func (f *Filter) stream() *gateway.Stream { return f.h.Stream() }

// enter creates the stream context on first use. Caller holds in.mu.
func (f *Filter) enter() error {
	if f.id != 0 {
		return nil
	}
	in := f.in
	id := in.newContextID()
	in.contexts[id] = &guestContext{id: id, root: f.root, stream: f}
	f.id = id
	_, err := in.call(in.fnContextCreate, id, uint64(id), uint64(f.root))
	return err
}

// invoke runs one stream callback and returns its raw result. ok is false
// when the plugin is skipped or failed.
func (f *Filter) invoke(phase string, fn *export, args ...uint64) (uint32, bool) {
	if f.failed || f.gone {
		return 0, false
	}
	in := f.in
	if in == nil {
		f.fail(phase, errInstanceDead)
		return 0, false
	}
	if f.startErr != nil {
		f.fail(phase, f.startErr)
		return 0, false
	}
	in.mu.Lock()
	in.callOwner = f
	f.phase = phase
	err := f.enter()
	var res uint64
	if err == nil {
		if fn == nil {
			in.callOwner = nil
			in.mu.Unlock()
			return 0, true
		}
		var argv [4]uint64
		argv[0] = uint64(f.id)
		n := 1 + copy(argv[1:], args)
		res, err = in.call(fn, f.id, argv[:n]...)
	}
	in.callOwner = nil
	in.mu.Unlock()
	if err != nil {
		f.fail(phase, err)
		return 0, false
	}
	return uint32(res), true
}

// fail applies the plugin's fail strategy after a trap or a dead instance.
func (f *Filter) fail(phase string, err error) {
	if f.failed {
		return
	}
	f.failed = true
	st := f.stream()
	f.p.logger.Error("plugin failed on a request", "phase", phase, "request_id", st.ID(), "fail_strategy", f.p.failStrategy(), "error", err)
	if f.p.metrics != nil {
		f.p.metrics.streamFailures.WithLabelValues(f.p.spec.Name).Inc()
	}
	if f.p.spec.FailOpen {
		return
	}
	body := []byte(`{"error":{"message":"plugin ` + f.p.spec.Name + ` failed","type":"gateway_error","code":"wasm_fail_stream","status":503}}` + "\n")
	f.h.SendLocalReply(503, body, []gateway.HeaderField{{Name: "content-type", Value: "application/json"}}, "wasm_fail_stream")
}

// failWaiting applies the fail strategy to a stream whose instance died
// while the stream waited for it (a callout callback that would have
// resumed it): fail-close answers 503, fail-open skips the plugin from now
// on and releases what it held. Runs on the stream's driver goroutine.
func (f *Filter) failWaiting(phase string, err error) {
	if f.gone || f.failed {
		return
	}
	if err == nil {
		err = errInstanceDead
	}
	f.fail(phase, err)
	if f.p.spec.FailOpen {
		f.h.Continue(gateway.Request)
		f.h.Continue(gateway.Response)
	}
}

func (f *Filter) headersAction(v uint32) gateway.HeadersAction {
	switch v {
	case 0, 2:
		return gateway.HeadersContinue
	case 1:
		if f.in.abi == ABI0100 {
			return gateway.HeadersStopIteration
		}
		return gateway.HeadersStopAllWatermark
	case 3:
		return gateway.HeadersStopAllBuffer
	default:
		return gateway.HeadersStopAllWatermark
	}
}

func dataAction(v uint32) gateway.DataAction {
	switch v {
	case 0:
		return gateway.DataContinue
	case 1:
		return gateway.DataStopAndBuffer
	case 2:
		return gateway.DataStopAndWatermark
	default:
		return gateway.DataStopNoBuffer
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// OnRequestHeaders implements gateway.Filter.
func (f *Filter) OnRequestHeaders(h *gateway.Headers, eos bool) gateway.HeadersAction {
	v, ok := f.invoke("request_headers", f.inFn(func(in *Instance) *export { return in.fnReqHeaders }), uint64(h.Len()), b2u(eos))
	if !ok {
		return gateway.HeadersContinue
	}
	return f.headersAction(v)
}

// OnRequestBody implements gateway.Filter.
func (f *Filter) OnRequestBody(b *gateway.Buffer, eos bool) gateway.DataAction {
	f.body[gateway.Request] = b
	v, ok := f.invoke("request_body", f.inFn(func(in *Instance) *export { return in.fnReqBody }), uint64(b.Len()), b2u(eos))
	if !ok {
		f.body[gateway.Request] = nil
		return gateway.DataContinue
	}
	a := dataAction(v)
	if a == gateway.DataContinue || a == gateway.DataStopNoBuffer {
		f.body[gateway.Request] = nil
	}
	return a
}

// OnRequestTrailers implements gateway.Filter.
func (f *Filter) OnRequestTrailers(t *gateway.Headers) gateway.TrailersAction {
	v, ok := f.invoke("request_trailers", f.inFn(func(in *Instance) *export { return in.fnReqTrailers }), uint64(t.Len()))
	if !ok || v == 0 {
		return gateway.TrailersContinue
	}
	return gateway.TrailersStop
}

// OnResponseHeaders implements gateway.Filter.
func (f *Filter) OnResponseHeaders(h *gateway.Headers, eos bool) gateway.HeadersAction {
	v, ok := f.invoke("response_headers", f.inFn(func(in *Instance) *export { return in.fnRespHeaders }), uint64(h.Len()), b2u(eos))
	if !ok {
		return gateway.HeadersContinue
	}
	return f.headersAction(v)
}

// OnResponseBody implements gateway.Filter.
func (f *Filter) OnResponseBody(b *gateway.Buffer, eos bool) gateway.DataAction {
	f.body[gateway.Response] = b
	v, ok := f.invoke("response_body", f.inFn(func(in *Instance) *export { return in.fnRespBody }), uint64(b.Len()), b2u(eos))
	if !ok {
		f.body[gateway.Response] = nil
		return gateway.DataContinue
	}
	a := dataAction(v)
	if a == gateway.DataContinue || a == gateway.DataStopNoBuffer {
		f.body[gateway.Response] = nil
	}
	return a
}

// OnResponseTrailers implements gateway.Filter.
func (f *Filter) OnResponseTrailers(t *gateway.Headers) gateway.TrailersAction {
	v, ok := f.invoke("response_trailers", f.inFn(func(in *Instance) *export { return in.fnRespTrailers }), uint64(t.Len()))
	if !ok || v == 0 {
		return gateway.TrailersContinue
	}
	return gateway.TrailersStop
}

// OnLog implements gateway.Filter: the context is created if the plugin
// never saw the request, then proxy_on_log runs.
func (f *Filter) OnLog() {
	f.body = [2]*gateway.Buffer{}
	f.invoke("log", f.inFn(func(in *Instance) *export { return in.fnLog }))
}

// OnDestroy implements gateway.Filter: proxy_on_done then proxy_on_delete.
func (f *Filter) OnDestroy() {
	in := f.in
	defer func() {
		if in != nil {
			in.plugin.pool.release(in)
		}
	}()
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if f.id != 0 && !f.gone {
		in.callOwner = f
		if !in.dead.Load() {
			if _, err := in.call(in.fnDone, f.id, uint64(f.id)); err == nil {
				_, _ = in.call(in.fnDelete, f.id, uint64(f.id))
			}
		}
		in.callOwner = nil
		delete(in.contexts, f.id)
	}
	f.gone = true
	if f.root != 0 {
		in.detach(f.root)
	}
}

// inFn selects an export of the pinned instance (nil-safe).
func (f *Filter) inFn(sel func(*Instance) *export) *export {
	if f.in == nil {
		return nil
	}
	return sel(f.in)
}
