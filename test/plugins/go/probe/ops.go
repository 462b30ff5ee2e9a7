package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
)

var (
	kept [][]byte // memory held by "alloc"
	spin uint64   // counted by "loop" so the loop has a body
)

func init() {
	ops = map[string]opSpec{
		// Header maps.
		"get_header": {[]string{"key"}, func(e *env, s *step) {
			v, st := getHeader(e.mapOf(s), s.Key)
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "raw")
			}
		}},
		"get_headers": {nil, func(e *env, s *step) {
			v, st := getHeaderPairs(e.mapOf(s))
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "pairs")
			}
		}},
		"set_header":     {[]string{"key"}, opReplaceHeader},
		"replace_header": {[]string{"key"}, opReplaceHeader},
		"add_header": {[]string{"key"}, func(e *env, s *step) {
			e.status(s, addHeader(e.mapOf(s), s.Key, string(s.value)))
		}},
		"remove_header": {[]string{"key"}, func(e *env, s *step) {
			e.status(s, removeHeader(e.mapOf(s), s.Key))
		}},
		"set_headers": {[]string{"pairs"}, func(e *env, s *step) {
			e.status(s, setHeaderPairs(e.mapOf(s), s.Pairs.list()))
		}},
		"get_header_map_size": {nil, func(e *env, s *step) {
			var n uint32
			st := proxyGetHeaderMapSize(e.mapOf(s), &n)
			e.status(s, st)
			if st == statusOK {
				e.putText(s, itoa(int64(n)))
			}
		}},

		// Properties.
		"get_property":       {[]string{"path"}, opGetProperty},
		"property_to_header": {[]string{"path"}, opGetProperty},
		"set_property": {[]string{"path"}, func(e *env, s *step) {
			e.status(s, setProperty(s.Path, s.value))
		}},

		// Buffers.
		"get_body": {nil, func(e *env, s *step) {
			v, st := getBuffer(e.bufOf(s), u32or(s.Start, 0), u32or(s.Max, maxSize))
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "raw")
			}
		}},
		"set_body": {nil, func(e *env, s *step) {
			e.status(s, setBuffer(e.bufOf(s), u32or(s.Start, 0), u32or(s.Size, maxSize), s.value))
		}},
		"replace_body": {nil, func(e *env, s *step) { e.status(s, setBuffer(e.bufOf(s), 0, maxSize, s.value)) }},
		"append_body":  {nil, func(e *env, s *step) { e.status(s, setBuffer(e.bufOf(s), maxSize, 0, s.value)) }},
		"prepend_body": {nil, func(e *env, s *step) { e.status(s, setBuffer(e.bufOf(s), 0, 0, s.value)) }},
		"replace_in_body": {[]string{"old"}, func(e *env, s *step) {
			buf := e.bufOf(s)
			v, st := getBuffer(buf, 0, maxSize)
			if st == statusOK {
				st = setBuffer(buf, 0, maxSize, []byte(strings.ReplaceAll(string(v), s.Old, s.New)))
			}
			e.status(s, st)
		}},
		"get_buffer_status": {nil, func(e *env, s *step) {
			var n, flags uint32
			st := proxyGetBufferStatus(e.bufOf(s), &n, &flags)
			e.status(s, st)
			if st == statusOK {
				e.putText(s, itoa(int64(n)))
			}
		}},

		// Stream control.
		"continue_stream": {nil, func(e *env, s *step) { e.status(s, proxyContinueStream(e.streamOf(s))) }},
		"close_stream":    {nil, func(e *env, s *step) { e.status(s, proxyCloseStream(e.streamOf(s))) }},
		"send_local_response": {[]string{"code"}, func(e *env, s *step) {
			grpc := int32(-1)
			if s.GrpcStatus != nil {
				grpc = *s.GrpcStatus
			}
			e.status(s, sendLocalResponse(*s.Code, s.Details, s.body, s.Headers.list(), grpc))
		}},

		// Callouts.
		"http_call": {[]string{"cluster"}, (*env).dispatchHTTP},
		"redis_init": {[]string{"cluster"}, func(e *env, s *step) {
			e.status(s, redisInit(s.Cluster, s.Username, s.Password, u32or(s.TimeoutMs, 1000)))
		}},
		"redis_call": {[]string{"cluster", "command|resp"}, (*env).dispatchRedis},
		"get_status": {nil, func(e *env, s *step) {
			code, msg, st := getStatus()
			e.status(s, st)
			if st == statusOK {
				e.putText(s, itoa(int64(code)))
				if s.msgTo.kind != "" {
					e.write(s.msgTo, "message", string(msg))
				}
			}
		}},
		"callback_arg": {[]string{"arg"}, func(e *env, s *step) {
			v, ok := e.args[s.Arg]
			if !ok {
				e.status(s, statusNotFound)
				return
			}
			e.status(s, statusOK)
			e.putText(s, v)
		}},

		// Shared data.
		"get_shared": {[]string{"key"}, func(e *env, s *step) {
			v, cas, st := getSharedData(s.Key)
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "raw")
				if s.casTo.kind != "" {
					e.write(s.casTo, "cas", itoa(int64(cas)))
				}
			}
		}},
		"set_shared": {[]string{"key"}, func(e *env, s *step) {
			cas := u32or(s.Cas, 0)
			if s.CasVar != "" {
				vars, name := e.vars(s.CasVar)
				n, _ := strconv.ParseUint(vars[name], 10, 32)
				cas = uint32(n)
			}
			e.status(s, setSharedData(s.Key, s.value, cas))
		}},
		"incr_shared": {[]string{"key"}, func(e *env, s *step) {
			by := i64or(s.By, 1)
			retries := 10
			if s.Retries != nil {
				retries = *s.Retries
			}
			var st uint32
			var next int64
			for attempt := 0; attempt <= retries; attempt++ {
				v, cas, gst := getSharedData(s.Key)
				cur := int64(0)
				switch gst {
				case statusOK:
					cur, _ = strconv.ParseInt(string(v), 10, 64)
				case statusNotFound:
					cas = 0
				default:
					e.status(s, gst)
					return
				}
				next = cur + by
				if st = setSharedData(s.Key, []byte(itoa(next)), cas); st != statusCasMismatch {
					break
				}
			}
			e.status(s, st)
			if st == statusOK {
				e.putText(s, itoa(next))
			}
		}},

		// Metrics.
		"define_metric": {[]string{"name"}, func(e *env, s *step) {
			id, st := defineMetric(s.metricType, s.Name)
			e.status(s, st)
			if st == statusOK {
				e.root.metrics[s.Name] = id
				e.putText(s, itoa(int64(id)))
			}
		}},
		"increment_metric": {[]string{"name|id"}, func(e *env, s *step) {
			if id, ok := e.metricID(s); ok {
				e.status(s, proxyIncrementMetric(id, i64or(s.Delta, 1)))
			}
		}},
		"record_metric": {[]string{"name|id", "number"}, func(e *env, s *step) {
			if id, ok := e.metricID(s); ok {
				e.status(s, proxyRecordMetric(id, uint64(*s.Number)))
			}
		}},
		"get_metric": {[]string{"name|id"}, func(e *env, s *step) {
			if id, ok := e.metricID(s); ok {
				var v uint64
				st := proxyGetMetric(id, &v)
				e.status(s, st)
				if st == statusOK {
					e.putText(s, strconv.FormatUint(v, 10))
				}
			}
		}},

		// Timers and queues.
		"set_tick_period": {[]string{"ms"}, func(e *env, s *step) {
			e.status(s, proxySetTickPeriodMilliseconds(*s.Ms))
		}},
		"register_queue": {[]string{"name"}, func(e *env, s *step) {
			id, st := registerQueue(s.Name)
			e.status(s, st)
			if st == statusOK {
				e.root.queues[s.Name] = id
				e.putText(s, itoa(int64(id)))
			}
		}},
		"resolve_queue": {[]string{"name"}, func(e *env, s *step) {
			id, st := resolveQueue(s.VMID, s.Name)
			e.status(s, st)
			if st == statusOK {
				e.root.queues[s.Name] = id
				e.putText(s, itoa(int64(id)))
			}
		}},
		"enqueue": {[]string{"name|id"}, func(e *env, s *step) {
			if id, ok := e.queueID(s); ok {
				e.status(s, proxyEnqueueSharedQueue(id, bytesPtr(s.value), int32(len(s.value))))
			}
		}},
		"dequeue": {[]string{"name|id"}, func(e *env, s *step) {
			if id, ok := e.queueID(s); ok {
				v, st := dequeue(id)
				e.status(s, st)
				if st == statusOK {
					e.put(s, v, "raw")
				}
			}
		}},

		// Higress extensions and foreign functions.
		"inject_encoded_data": {nil, func(e *env, s *step) {
			end := uint32(0)
			if s.EndStream {
				end = 1
			}
			e.status(s, proxyInjectEncodedDataToFilterChain(bytesPtr(s.value), int32(len(s.value)), end))
		}},
		"get_upstream_hosts": {nil, func(e *env, s *step) {
			v, st := getUpstreamHosts()
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "pairs")
			}
		}},
		"set_upstream_override_host": {nil, func(e *env, s *step) {
			e.status(s, proxySetUpstreamOverrideHost(bytesPtr(s.value), int32(len(s.value))))
		}},
		"call_foreign_function": {[]string{"name"}, func(e *env, s *step) {
			v, st := callForeign(s.Name, s.args)
			e.status(s, st)
			if st == statusOK {
				e.put(s, v, "hex")
			}
		}},
		"get_log_level": {nil, func(e *env, s *step) {
			var lvl uint32
			st := proxyGetLogLevel(&lvl)
			e.status(s, st)
			if st == statusOK {
				e.putText(s, itoa(int64(lvl)))
			}
		}},
		"get_current_time": {nil, func(e *env, s *step) {
			var ns uint64
			st := proxyGetCurrentTimeNanoseconds(&ns)
			e.status(s, st)
			if st == statusOK {
				e.putText(s, strconv.FormatUint(ns, 10))
			}
		}},
		"log": {nil, func(e *env, s *step) {
			e.status(s, hostLog(s.level, s.Message))
		}},
		"set_effective_context": {[]string{"id"}, func(e *env, s *step) {
			e.status(s, errStatus(proxywasm.SetEffectiveContext(*s.ID)))
		}},
		"plugin_done": {nil, func(e *env, s *step) { e.status(s, proxyDone()) }},

		// Variables and control.
		"set_var": {[]string{"name"}, func(e *env, s *step) {
			vars, name := e.vars(s.Name)
			vars[name] = string(s.value)
		}},
		"get_var": {[]string{"name"}, func(e *env, s *step) {
			vars, name := e.vars(s.Name)
			v, ok := vars[name]
			if !ok {
				e.status(s, statusNotFound)
				return
			}
			e.status(s, statusOK)
			e.putText(s, v)
		}},
		"repeat": {[]string{"count"}, func(e *env, s *step) {
			for i := uint32(0); i < *s.Count; i++ {
				e.runSteps(s.Steps)
			}
		}},

		// Crashes and resources.
		"panic": {nil, func(e *env, s *step) {
			msg := s.Message
			if msg == "" {
				msg = "probe: panic step in " + e.callback
			}
			panic(msg)
		}},
		"exit": {nil, func(e *env, s *step) { os.Exit(int(u32or(s.Code, 3))) }},
		"alloc": {[]string{"mib"}, func(e *env, s *step) {
			b := make([]byte, int(*s.MiB)<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept = append(kept, b)
			total := 0
			for _, k := range kept {
				total += len(k)
			}
			e.putText(s, itoa(int64(total>>20)))
		}},
		"free": {nil, func(e *env, s *step) {
			kept = nil
			runtime.GC()
		}},
		"gc":   {nil, func(e *env, s *step) { runtime.GC() }},
		"loop": {nil, func(e *env, s *step) { spinForever() }},
		"sleep": {[]string{"ms"}, func(e *env, s *step) {
			start := time.Now()
			time.Sleep(time.Duration(*s.Ms) * time.Millisecond)
			e.putText(s, itoa(time.Since(start).Milliseconds()))
		}},

		// WASI probes.
		"time_now": {nil, func(e *env, s *step) { e.putText(s, itoa(time.Now().UnixNano())) }},
		"random": {nil, func(e *env, s *step) {
			b := make([]byte, u32or(s.Bytes, 16))
			if _, err := rand.Read(b); err != nil {
				e.status(s, statusInternalFailure)
				return
			}
			e.put(s, b, "hex")
		}},
		"getenv": {[]string{"name"}, func(e *env, s *step) {
			v, ok := os.LookupEnv(s.Name)
			if !ok {
				e.status(s, statusNotFound)
				return
			}
			e.status(s, statusOK)
			e.putText(s, v)
		}},
		"read_file": {nil, func(e *env, s *step) {
			name := s.File
			if name == "" {
				name = "/etc/hostname"
			}
			b, err := os.ReadFile(name)
			if err != nil {
				e.status(s, statusNotFound)
				e.putText(s, err.Error())
				return
			}
			e.status(s, statusOK)
			e.putText(s, "ok:"+itoa(int64(len(b))))
		}},
		"stdout": {nil, func(e *env, s *step) { fmt.Println(s.Message) }},
		"stderr": {nil, func(e *env, s *step) { fmt.Fprintln(os.Stderr, s.Message) }},
	}
}

func opReplaceHeader(e *env, s *step) {
	e.status(s, replaceHeader(e.mapOf(s), s.Key, string(s.value)))
}

func opGetProperty(e *env, s *step) {
	v, st := getProperty(s.Path)
	e.status(s, st)
	if st == statusOK {
		e.put(s, v, "raw")
	}
}

// spinForever never returns; only the host can stop it.
func spinForever() {
	for {
		spin++
		if spin == 0 { // wrapped after 2^64 iterations: keep going
			runtime.Gosched()
		}
	}
}
