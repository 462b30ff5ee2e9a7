package wasmhost

import (
	"context"
	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostcall is the Go side of one env import: it reads its i32/i64
// arguments from stack and returns a status.
type hostcall func(in *Instance, s []uint64) Status

type hostcallDef struct {
	name   string
	params []api.ValueType
	fn     hostcall
	// early marks calls allowed while the start function runs.
	early bool
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func p32(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

// hostcalls lists every env import the host provides (spec/host.md §1.3).
var hostcalls []hostcallDef

func init() {
	hostcalls = []hostcallDef{
		// Logging, configuration, time.
		{name: "proxy_log", params: p32(3), fn: hcLog, early: true},
		{name: "proxy_get_log_level", params: p32(1), fn: hcGetLogLevel, early: true},
		{name: "proxy_get_current_time_nanoseconds", params: p32(1), fn: hcGetTime, early: true},
		{name: "proxy_set_tick_period_milliseconds", params: p32(1), fn: hcSetTickPeriod},
		{name: "proxy_get_configuration", params: p32(2), fn: hcGetConfiguration},
		{name: "proxy_get_status", params: p32(3), fn: hcGetStatus},
		// Properties.
		{name: "proxy_get_property", params: p32(4), fn: hcGetProperty},
		{name: "proxy_set_property", params: p32(4), fn: hcSetProperty},
		// Header maps.
		{name: "proxy_get_header_map_value", params: p32(5), fn: hcGetHeaderValue},
		{name: "proxy_get_header_map_pairs", params: p32(3), fn: hcGetHeaderPairs},
		{name: "proxy_set_header_map_pairs", params: p32(3), fn: hcSetHeaderPairs},
		{name: "proxy_add_header_map_value", params: p32(5), fn: hcAddHeaderValue},
		{name: "proxy_replace_header_map_value", params: p32(5), fn: hcReplaceHeaderValue},
		{name: "proxy_remove_header_map_value", params: p32(3), fn: hcRemoveHeaderValue},
		{name: "proxy_get_header_map_size", params: p32(2), fn: hcGetHeaderMapSize},
		// Buffers.
		{name: "proxy_get_buffer_bytes", params: p32(5), fn: hcGetBufferBytes},
		{name: "proxy_set_buffer_bytes", params: p32(5), fn: hcSetBufferBytes},
		{name: "proxy_get_buffer_status", params: p32(3), fn: hcGetBufferStatus},
		// Stream control.
		{name: "proxy_continue_stream", params: p32(1), fn: hcContinueStream},
		{name: "proxy_close_stream", params: p32(1), fn: hcCloseStream},
		{name: "proxy_send_local_response", params: p32(8), fn: hcSendLocalResponse},
		{name: "proxy_continue_request", params: nil, fn: hcContinueRequest010},
		{name: "proxy_continue_response", params: nil, fn: hcContinueResponse010},
		{name: "proxy_clear_route_cache", params: nil, fn: hcClearRouteCache010},
		// Callouts.
		{name: "proxy_http_call", params: p32(10), fn: hcHTTPCall},
		{name: "proxy_redis_init", params: p32(7), fn: hcRedisInit},
		{name: "proxy_redis_call", params: p32(5), fn: hcRedisCall},
		{name: "proxy_grpc_call", params: p32(12), fn: hcUnimplemented},
		{name: "proxy_grpc_stream", params: p32(9), fn: hcUnimplemented},
		{name: "proxy_grpc_send", params: p32(4), fn: hcUnimplemented},
		{name: "proxy_grpc_cancel", params: p32(1), fn: hcUnimplemented},
		{name: "proxy_grpc_close", params: p32(1), fn: hcUnimplemented},
		// Shared state and metrics.
		{name: "proxy_get_shared_data", params: p32(5), fn: hcGetSharedData},
		{name: "proxy_set_shared_data", params: p32(5), fn: hcSetSharedData},
		{name: "proxy_register_shared_queue", params: p32(3), fn: hcRegisterQueue},
		{name: "proxy_resolve_shared_queue", params: p32(5), fn: hcResolveQueue},
		{name: "proxy_enqueue_shared_queue", params: p32(3), fn: hcEnqueue},
		{name: "proxy_dequeue_shared_queue", params: p32(3), fn: hcDequeue},
		{name: "proxy_define_metric", params: p32(4), fn: hcDefineMetric},
		{name: "proxy_increment_metric", params: []api.ValueType{i32, i64}, fn: hcIncrementMetric},
		{name: "proxy_record_metric", params: []api.ValueType{i32, i64}, fn: hcRecordMetric},
		{name: "proxy_get_metric", params: p32(2), fn: hcGetMetric},
		// Contexts, FFI, Higress traffic extensions.
		{name: "proxy_set_effective_context", params: p32(1), fn: hcSetEffectiveContext},
		{name: "proxy_done", params: nil, fn: hcDone},
		{name: "proxy_call_foreign_function", params: p32(6), fn: hcCallForeignFunction, early: true},
		{name: "proxy_inject_encoded_data_to_filter_chain", params: p32(3), fn: hcInjectData},
		{name: "proxy_get_upstream_hosts", params: p32(2), fn: hcGetUpstreamHosts},
		{name: "proxy_set_upstream_override_host", params: p32(2), fn: hcSetUpstreamOverride},
		{name: "envoy_resolve_dns", params: p32(3), fn: hcUnimplemented},
	}
	for _, d := range hostcalls {
		provided["env."+d.name] = true
	}
}

var provided = map[string]bool{"wasi_unstable.proc_exit": true}

// hostProvides reports whether an import resolves.
func hostProvides(module, name string) bool {
	if module == "wasi_snapshot_preview1" || module == loopguard.ImportModule && name == loopguard.ImportName {
		return true
	}
	return provided[module+"."+name]
}

func instantiateEnv(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder("env")
	for _, d := range hostcalls {
		d := d
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			in := instFrom(ctx)
			if in == nil {
				stack[0] = uint64(StatusInternalFailure)
				return
			}
			if in.mem == nil {
				in.mem = m.Memory()
			}
			if in.mod == nil && !d.early {
				// Still in the start function: no context exists yet.
				stack[0] = uint64(StatusInternalFailure)
				return
			}
			stack[0] = uint64(d.fn(in, stack))
		}), d.params, []api.ValueType{i32}).Export(d.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

func hcUnimplemented(*Instance, []uint64) Status { return StatusUnimplemented }

func u32(v uint64) uint32 { return uint32(v) }
