package wasmhost

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/sluicegw/sluice/internal/usagescan"
)

// The hostcall boundary against wild guest pointers: a hand-assembled
// module imports every hostcall of the table and exports a trampoline
// "t_<name>" per hostcall that passes its arguments through unchanged, so
// the tests can call each hostcall with any pointer and length. A hostcall
// must answer INVALID_MEMORY_ACCESS (6) for memory outside the guest's, and
// never panic (wazero would turn a host panic into a call error).

// boundsWasm builds the module: one 64 KiB page of memory, an allocator
// that returns the mutable global set by "set_alloc" (initially 1024),
// proxy_on_context_create, the ABI marker, and the trampolines.
func boundsWasm() []byte {
	var types [][]byte
	typeOf := func(params, results []api.ValueType) []byte {
		t := append([]byte{0x60}, boundsULEB(uint32(len(params)))...)
		t = append(t, params...)
		t = append(t, boundsULEB(uint32(len(results)))...)
		t = append(t, results...)
		for i, have := range types {
			if bytes.Equal(have, t) {
				return boundsULEB(uint32(i))
			}
		}
		types = append(types, t)
		return boundsULEB(uint32(len(types) - 1))
	}
	name := func(s string) []byte { return append(boundsULEB(uint32(len(s))), s...) }
	var imports, funcs, exports, code [][]byte
	for _, d := range hostcalls {
		e := append(name("env"), name(d.name)...)
		imports = append(imports, append(append(e, 0x00), typeOf(d.params, []api.ValueType{i32})...))
	}
	fn := func(export string, params, results []api.ValueType, body []byte) {
		funcs = append(funcs, typeOf(params, results))
		idx := uint32(len(imports) + len(funcs) - 1)
		exports = append(exports, append(append(name(export), 0x00), boundsULEB(idx)...))
		b := append([]byte{0x00}, body...) // no locals
		b = append(b, 0x0b)
		code = append(code, append(boundsULEB(uint32(len(b))), b...))
	}
	fn("proxy_abi_version_0_2_1", nil, nil, nil)
	fn("proxy_on_memory_allocate", []api.ValueType{i32}, []api.ValueType{i32}, []byte{0x23, 0x00}) // global.get 0
	fn("set_alloc", []api.ValueType{i32}, nil, []byte{0x20, 0x00, 0x24, 0x00})                     // global.set 0 (local 0)
	fn("proxy_on_context_create", []api.ValueType{i32, i32}, nil, nil)
	for i, d := range hostcalls {
		var body []byte
		for p := range d.params {
			body = append(body, 0x20)
			body = append(body, boundsULEB(uint32(p))...)
		}
		body = append(body, 0x10)
		body = append(body, boundsULEB(uint32(i))...)
		fn("t_"+d.name, d.params, []api.ValueType{i32}, body)
	}
	section := func(id byte, items [][]byte) []byte {
		body := boundsULEB(uint32(len(items)))
		for _, it := range items {
			body = append(body, it...)
		}
		return append(append([]byte{id}, boundsULEB(uint32(len(body)))...), body...)
	}
	exports = append(exports, append(name("memory"), 0x02, 0x00))
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, types)...)
	out = append(out, section(2, imports)...)
	out = append(out, section(3, funcs)...)
	out = append(out, section(5, [][]byte{{0x00, 0x01}})...)                        // memory: 1 page, no maximum
	out = append(out, section(6, [][]byte{{i32, 0x01, 0x41, 0x80, 0x08, 0x0b}})...) // global: mut i32 = 1024
	out = append(out, section(7, exports)...)
	return append(out, section(10, code)...)
}

func boundsULEB(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// boundsRedis accepts every call and completes it asynchronously.
type boundsRedis struct{}

func (boundsRedis) Init(string, string, string, time.Duration) error { return nil }
func (boundsRedis) Call(_ context.Context, _ string, _ []byte, done func(int, []byte)) error {
	go done(0, []byte("+OK\r\n"))
	return nil
}
func (boundsRedis) Close() error { return nil }

// boundsInstance runs the module as a plugin with one instance.
func boundsInstance(tb testing.TB) *Instance {
	tb.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := NewRuntime(ctx, RuntimeOptions{Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rt.Close(ctx) })
	mod, err := rt.Compile(ctx, boundsWasm())
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	svc := &Services{Shared: NewShared(), Logger: logger, NewRedis: func() RedisClient { return boundsRedis{} }}
	p, err := NewPlugin(ctx, rt, mod, PluginSpec{Name: "bounds", PoolSize: 1, Config: []byte("{}")}, svc)
	if err != nil {
		tb.Fatalf("plugin: %v", err)
	}
	tb.Cleanup(func() { p.Close(ctx) })
	live := p.pool.live()
	if len(live) != 1 {
		tb.Fatalf("%d live instances, want 1", len(live))
	}
	return live[0]
}

// boundsCall calls hostcall name through its trampoline, as the root
// context would (no stream), and returns its status. A call error means
// the host panicked or the instance died.
func boundsCall(tb testing.TB, in *Instance, name string, args ...uint64) Status {
	tb.Helper()
	fn := in.mod.ExportedFunction("t_" + name)
	if fn == nil {
		tb.Fatalf("no trampoline for %s", name)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.current, in.effective = in.root, in.root
	st := make([]uint64, max(len(args), 1))
	copy(st, args)
	err := fn.CallWithStack(in.callCtx, st)
	in.current, in.effective = 0, 0
	if err != nil {
		tb.Fatalf("%s%x: host failed instead of answering a status: %v", name, args, err)
	}
	if in.dead.Load() {
		tb.Fatalf("%s%x: the instance died", name, args)
	}
	return Status(uint32(st[0]))
}

func boundsSetAlloc(tb testing.TB, in *Instance, v uint32) {
	tb.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, err := in.mod.ExportedFunction("set_alloc").Call(in.callCtx, uint64(v)); err != nil {
		tb.Fatal(err)
	}
}

// Guest memory layout of the tests.
const (
	bKey    = 100  // "x-key"
	bVal    = 200  // "value"
	bProp   = 300  // "plugin_name"
	bFFI    = 400  // "get_log_level"
	bQueue  = 500  // "queue"
	bScan   = 600  // "sluice_scan_token_usage" (usagescan.ForeignFunction)
	bEvent  = 700  // boundsEvent
	bOut    = 1000 // scratch for results: 1000, 1004, 1008
	bWild   = 0xffffffff
	bNear   = 65530 // 6 bytes before the end of the one page
	bPast   = 100   // a length that crosses the end from bNear
	bEndU32 = 65534 // a u32 written here crosses the end
)

func boundsMemory(tb testing.TB, in *Instance) {
	tb.Helper()
	for off, s := range map[uint32]string{bKey: "x-key", bVal: "value", bProp: "plugin_name", bFFI: "get_log_level", bQueue: "queue",
		bScan: usagescan.ForeignFunction, bEvent: boundsEvent} {
		if !in.mem.Write(off, []byte(s)) {
			tb.Fatal("memory setup")
		}
	}
}

// boundsEvent is a response event with usage, at bEvent.
const boundsEvent = `{"model":"m1","usage":{"prompt_tokens":3,"completion_tokens":4}}`

func neg1() uint64 { return uint64(uint32(0xffffffff)) }

// TestHostcallBounds calls each hostcall with pointers and lengths outside
// guest memory, in every pointer argument the hostcall reaches without a
// stream: each answers INVALID_MEMORY_ACCESS and the instance lives on.
func TestHostcallBounds(t *testing.T) {
	in := boundsInstance(t)
	boundsMemory(t, in)
	// State some cases need: a shared key, a queue with an item, a metric.
	if st := boundsCall(t, in, "proxy_set_shared_data", bKey, 5, bVal, 5, 0); st != StatusOK {
		t.Fatalf("set_shared_data = %d", st)
	}
	if st := boundsCall(t, in, "proxy_register_shared_queue", bQueue, 5, bOut); st != StatusOK {
		t.Fatalf("register_shared_queue = %d", st)
	}
	queue, _ := in.mem.ReadUint32Le(bOut)
	if st := boundsCall(t, in, "proxy_enqueue_shared_queue", uint64(queue), bVal, 5); st != StatusOK {
		t.Fatalf("enqueue = %d", st)
	}
	if st := boundsCall(t, in, "proxy_define_metric", 0, bKey, 5, bOut); st != StatusOK {
		t.Fatalf("define_metric = %d", st)
	}
	metric, _ := in.mem.ReadUint32Le(bOut)

	cases := []struct {
		name string
		args []uint64
	}{
		{"proxy_log", []uint64{2, bWild, 10}},
		{"proxy_log", []uint64{2, bNear, bPast}},
		{"proxy_log", []uint64{2, 0, bWild}},
		{"proxy_get_log_level", []uint64{bWild}},
		{"proxy_get_log_level", []uint64{bEndU32}},
		{"proxy_get_current_time_nanoseconds", []uint64{bWild}},
		{"proxy_get_current_time_nanoseconds", []uint64{65532}}, // 8 bytes cross the end
		{"proxy_get_configuration", []uint64{bWild, bOut}},
		{"proxy_get_configuration", []uint64{bOut, bWild}},
		{"proxy_get_status", []uint64{bWild, bOut, bOut + 4}},
		{"proxy_get_status", []uint64{bOut, bWild, bOut + 4}},
		{"proxy_get_property", []uint64{bWild, 11, bOut, bOut + 4}},
		{"proxy_get_property", []uint64{bNear, bPast, bOut, bOut + 4}},
		{"proxy_get_property", []uint64{bProp, 11, bWild, bOut + 4}},
		{"proxy_get_property", []uint64{bProp, 11, bOut, bWild}},
		{"proxy_get_property", []uint64{bProp, 11, bOut, bEndU32}},
		{"proxy_set_property", []uint64{bWild, 5, bVal, 5}},
		{"proxy_set_property", []uint64{bKey, 5, bWild, 5}},
		{"proxy_set_property", []uint64{bKey, 5, bNear, bPast}},
		{"proxy_get_header_map_value", []uint64{0, bWild, 5, bOut, bOut + 4}},
		{"proxy_get_header_map_value", []uint64{0, bNear, bPast, bOut, bOut + 4}},
		{"proxy_get_header_map_pairs", []uint64{0, bWild, bOut}},
		{"proxy_get_header_map_pairs", []uint64{0, bOut, bWild}},
		{"proxy_set_header_map_pairs", []uint64{0, bWild, 16}},
		{"proxy_set_header_map_pairs", []uint64{0, bNear, bPast}},
		{"proxy_add_header_map_value", []uint64{0, bWild, 5, bVal, 5}},
		{"proxy_add_header_map_value", []uint64{0, bKey, 5, bWild, 5}},
		{"proxy_replace_header_map_value", []uint64{0, bWild, 5, bVal, 5}},
		{"proxy_replace_header_map_value", []uint64{0, bKey, 5, bNear, bPast}},
		{"proxy_remove_header_map_value", []uint64{0, bWild, 5}},
		{"proxy_get_buffer_bytes", []uint64{6, 0, 10, bWild, bOut}},
		{"proxy_get_buffer_bytes", []uint64{6, 0, 10, bOut, bWild}},
		{"proxy_set_buffer_bytes", []uint64{0, 0, 0, bWild, 10}},
		{"proxy_set_buffer_bytes", []uint64{1, 0, 0, bNear, bPast}},
		{"proxy_get_buffer_status", []uint64{6, bWild, bOut}},
		{"proxy_get_buffer_status", []uint64{6, bOut, bWild}},
		{"proxy_send_local_response", []uint64{403, bWild, 5, bVal, 5, 0, 0, neg1()}},
		{"proxy_send_local_response", []uint64{403, bKey, 5, bWild, 5, 0, 0, neg1()}},
		{"proxy_send_local_response", []uint64{403, bKey, 5, bVal, 5, bWild, 16, neg1()}},
		{"proxy_send_local_response", []uint64{403, bKey, 5, bVal, 5, bNear, bPast, neg1()}},
		{"proxy_http_call", []uint64{bWild, 5, 0, 0, 0, 0, 0, 0, 1000, bOut}},
		{"proxy_http_call", []uint64{bKey, 5, bWild, 16, 0, 0, 0, 0, 1000, bOut}},
		{"proxy_http_call", []uint64{bKey, 5, 0, 0, bNear, bPast, 0, 0, 1000, bOut}},
		{"proxy_http_call", []uint64{bKey, 5, 0, 0, 0, 0, bWild, 16, 1000, bOut}},
		{"proxy_redis_init", []uint64{bWild, 5, 0, 0, 0, 0, 1000}},
		{"proxy_redis_init", []uint64{bKey, 5, bWild, 5, 0, 0, 1000}},
		{"proxy_redis_init", []uint64{bKey, 5, 0, 0, bNear, bPast, 1000}},
		{"proxy_redis_call", []uint64{bWild, 5, bVal, 5, bOut}},
		{"proxy_redis_call", []uint64{bKey, 5, bWild, 5, bOut}},
		{"proxy_redis_call", []uint64{bKey, 5, bVal, 5, bWild}},
		{"proxy_redis_call", []uint64{bKey, 5, bVal, 5, bEndU32}},
		{"proxy_get_shared_data", []uint64{bWild, 5, bOut, bOut + 4, bOut + 8}},
		{"proxy_get_shared_data", []uint64{bKey, 5, bWild, bOut + 4, bOut + 8}},
		{"proxy_get_shared_data", []uint64{bKey, 5, bOut, bWild, bOut + 8}},
		{"proxy_get_shared_data", []uint64{bKey, 5, bOut, bOut + 4, bWild}},
		{"proxy_set_shared_data", []uint64{bWild, 5, bVal, 5, 0}},
		{"proxy_set_shared_data", []uint64{bKey, 5, bNear, bPast, 0}},
		{"proxy_register_shared_queue", []uint64{bWild, 5, bOut}},
		{"proxy_register_shared_queue", []uint64{bQueue, 5, bWild}},
		{"proxy_resolve_shared_queue", []uint64{bWild, 5, bQueue, 5, bOut}},
		{"proxy_resolve_shared_queue", []uint64{0, 0, bWild, 5, bOut}},
		{"proxy_resolve_shared_queue", []uint64{0, 0, bQueue, 5, bWild}},
		{"proxy_enqueue_shared_queue", []uint64{uint64(queue), bWild, 5}},
		{"proxy_enqueue_shared_queue", []uint64{uint64(queue), bNear, bPast}},
		{"proxy_dequeue_shared_queue", []uint64{uint64(queue), bWild, bOut}},
		{"proxy_define_metric", []uint64{0, bWild, 5, bOut}},
		{"proxy_define_metric", []uint64{0, bKey, 5, bWild}},
		{"proxy_get_metric", []uint64{uint64(metric), bWild}},
		{"proxy_get_metric", []uint64{uint64(metric), 65532}},
		{"proxy_call_foreign_function", []uint64{bWild, 13, 0, 0, bOut, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bFFI, 13, bWild, 5, bOut, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bFFI, 13, 0, 0, bWild, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bFFI, 13, 0, 0, bOut, bWild}},
		{"proxy_call_foreign_function", []uint64{bScan, 23, bWild, 5, bOut, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bScan, 23, bNear, bPast, bOut, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bScan, 23, bEvent, uint64(len(boundsEvent)), bWild, bOut + 4}},
		{"proxy_call_foreign_function", []uint64{bScan, 23, bEvent, uint64(len(boundsEvent)), bOut, bWild}},
		{"proxy_inject_encoded_data_to_filter_chain", []uint64{bWild, 5, 1}},
		{"proxy_set_upstream_override_host", []uint64{bWild, 5}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.name] = true
		if st := boundsCall(t, in, c.name, c.args...); st != StatusInvalidMemoryAccess {
			t.Errorf("%s(%#x) = %d, want %d (INVALID_MEMORY_ACCESS)", c.name, c.args, st, StatusInvalidMemoryAccess)
		}
	}
	// The same with a guest allocator that returns memory the guest does
	// not have (or nothing): the copy into it fails cleanly.
	for _, ret := range []uint32{bEndU32, bWild, 0} {
		boundsSetAlloc(t, in, ret)
		if st := boundsCall(t, in, "proxy_get_property", bProp, 11, bOut, bOut+4); st != StatusInvalidMemoryAccess {
			t.Errorf("allocator returning %#x: get_property = %d, want %d", ret, st, StatusInvalidMemoryAccess)
		}
	}
	boundsSetAlloc(t, in, 1024)
	if st := boundsCall(t, in, "proxy_get_property", bProp, 11, bOut, bOut+4); st != StatusOK {
		t.Errorf("get_property with valid pointers = %d, want 0", st)
	} else if p, _ := in.mem.ReadUint32Le(bOut); p != 1024 {
		t.Errorf("get_property returned ptr %d, want 1024 (the allocator's)", p)
	} else if v, _ := in.mem.Read(1024, 6); string(v) != "bounds" {
		t.Errorf("get_property wrote %q, want the plugin name", v)
	}
	// Sluice's usage scan answers the event's usage values (usagescan's
	// encoding) in memory from the guest's allocator.
	boundsSetAlloc(t, in, 2048)
	if st := boundsCall(t, in, "proxy_call_foreign_function", bScan, 23, bEvent, uint64(len(boundsEvent)), bOut, bOut+4); st != StatusOK {
		t.Errorf("usage scan with valid pointers = %d, want 0", st)
	} else {
		p, _ := in.mem.ReadUint32Le(bOut)
		n, _ := in.mem.ReadUint32Le(bOut + 4)
		b, _ := in.mem.Read(p, n)
		var got, want usagescan.Fields
		want.Scan(boundsEvent)
		if p != 2048 || !usagescan.Decode(string(b), &got) || got != want {
			t.Errorf("usage scan answered %q at %d, want the encoding of %q at 2048", b, p, want)
		}
	}
	// Hostcalls without pointer arguments, or that need a stream before
	// touching memory (answering NOT_FOUND/BAD_ARGUMENT here), are left to
	// the fuzz target. List what the table has that the cases miss, so a
	// new hostcall with pointers does not go unnoticed.
	noPointersHere := map[string]bool{
		"proxy_set_tick_period_milliseconds": true, "proxy_get_header_map_size": true,
		"proxy_continue_stream": true, "proxy_close_stream": true, "proxy_continue_request": true,
		"proxy_continue_response": true, "proxy_clear_route_cache": true, "proxy_grpc_call": true,
		"proxy_grpc_stream": true, "proxy_grpc_send": true, "proxy_grpc_cancel": true, "proxy_grpc_close": true,
		"proxy_increment_metric": true, "proxy_record_metric": true, "proxy_set_effective_context": true,
		"proxy_done": true, "proxy_get_upstream_hosts": true, "envoy_resolve_dns": true,
	}
	for _, d := range hostcalls {
		if !covered[d.name] && !noPointersHere[d.name] {
			t.Errorf("hostcall %s has no wild-pointer case", d.name)
		}
	}
}

// knownStatuses are the statuses a hostcall may answer.
var knownStatuses = map[Status]bool{
	StatusOK: true, StatusNotFound: true, StatusBadArgument: true, StatusSerializationFailure: true,
	StatusParseFailure: true, StatusInvalidMemoryAccess: true, StatusEmpty: true, StatusCASMismatch: true,
	StatusBrokenConnection: true, StatusInternalFailure: true, StatusUnimplemented: true,
}

var (
	fuzzOnce sync.Once
	fuzzIn   *Instance
)

// FuzzHostcallBounds calls a hostcall of the table (data[0]) with
// arguments from the rest of data (4 bytes per i32, 8 per i64, missing
// bytes are 0; a leading byte per argument chooses wild, near-end or
// in-page values). Guest memory holds strings, a pairs map and protobuf
// bytes. Every call must return a known status without killing the
// instance or panicking the host.
func FuzzHostcallBounds(f *testing.F) {
	for i := range hostcalls {
		f.Add([]byte{byte(i)})
		f.Add(append([]byte{byte(i)}, bytes.Repeat([]byte{0xff}, 60)...))
		f.Add(append([]byte{byte(i)}, 1, 0x64, 0, 0, 0, 1, 5, 0, 0, 0, 1, 0xe8, 3, 0, 0, 1, 0xec, 3, 0, 0, 1, 0xf0, 3, 0, 0))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOnce.Do(func() {
			// One instance for the whole run (a fuzz worker is one process);
			// its cleanup is skipped, the process ends with the run.
			fuzzIn = boundsInstance(&fuzzTB{T: t})
		})
		in := fuzzIn
		if len(data) == 0 {
			return
		}
		boundsFuzzMemory(t, in)
		d := hostcalls[int(data[0])%len(hostcalls)]
		rest := data[1:]
		args := make([]uint64, len(d.params))
		for i, p := range d.params {
			width := 4
			if p == i64 {
				width = 8
			}
			mode := byte(0)
			if len(rest) > 0 {
				mode, rest = rest[0], rest[1:]
			}
			var raw [8]byte
			n := copy(raw[:width], rest)
			rest = rest[n:]
			v := binary.LittleEndian.Uint64(raw[:])
			switch mode % 4 {
			case 0: // as given
			case 1: // inside the page
				v %= 65536
			case 2: // near the end of the page
				v = 65536 - v%64
			case 3: // near the top of the address space
				v = uint64(uint32(0xffffffff - v%64))
			}
			if p == i32 {
				v = uint64(uint32(v))
			}
			args[i] = v
		}
		st := boundsCall(t, in, d.name, args...)
		if !knownStatuses[st] {
			t.Fatalf("%s(%#x) = %d, not a proxy_status_t", d.name, args, st)
		}
	})
}

// boundsFuzzMemory resets the start of guest memory to known content.
func boundsFuzzMemory(tb testing.TB, in *Instance) {
	in.mu.Lock()
	defer in.mu.Unlock()
	page := make([]byte, 2048)
	copy(page[bKey:], "x-key")
	copy(page[bVal:], "value")
	copy(page[bProp:], "plugin_name")
	copy(page[bFFI:], "inject_encoded_data_to_filter_chain")
	copy(page[bQueue:], "queue")
	// A pairs map {"a": "b"} at 600 and protobuf {1: "hi", 2: true} at 700.
	copy(page[600:], []byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b', 0})
	copy(page[700:], []byte{0x0a, 2, 'h', 'i', 0x10, 1})
	if !in.mem.Write(0, page) {
		tb.Fatal("memory setup")
	}
}

// fuzzTB lets boundsInstance run once for the whole fuzz run: cleanups
// are dropped instead of running when the first input's test ends.
type fuzzTB struct{ *testing.T }

func (fuzzTB) Cleanup(func()) {}
