package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
)

// env is what one callback invocation runs in.
type env struct {
	root     *rootContext
	stream   *streamContext // nil in root callbacks
	callback string
	eos      bool
	call     int               // 1-based invocation number of this callback in this context
	args     map[string]string // callback arguments, read by the callback_arg op
	dir      uint32            // 0 request, 1 response: default map and stream
	defBuf   uint32
}

type opSpec struct {
	required []string
	run      func(e *env, s *step)
}

// ops is filled in init (the table refers to runSteps, which reads it).
var ops map[string]opSpec

// runCallback runs the configured steps of e.callback and returns its action.
func (e *env) runCallback() types.Action {
	cb := e.root.cfg.On[e.callback]
	if cb == nil {
		return types.ActionContinue
	}
	e.runSteps(cb.Steps)
	if cb.Action == nil {
		return types.ActionContinue
	}
	if e.eos {
		return types.Action(cb.Action.eos)
	}
	return types.Action(cb.Action.notEOS)
}

func (e *env) runSteps(steps []*step) {
	for _, s := range steps {
		switch s.whenKind {
		case whenEOS:
			if !e.eos {
				continue
			}
		case whenNotEOS:
			if e.eos {
				continue
			}
		case whenCall:
			if e.call != s.whenN {
				continue
			}
		case whenStream:
			if e.stream == nil || e.stream.seq != s.whenN {
				continue
			}
		}
		ops[s.Op].run(e, s)
	}
}

func (e *env) prefix() string {
	if e.root.cfg.Name != "" {
		return "probe[" + e.root.cfg.Name + "]: "
	}
	return "probe: "
}

func (e *env) defaultMap() uint32 {
	if e.dir == 1 {
		return mapNames["response_headers"]
	}
	return mapNames["request_headers"]
}

func (e *env) mapOf(s *step) uint32 {
	if s.hasMap {
		return s.mapType
	}
	return e.defaultMap()
}

func (e *env) bufOf(s *step) uint32 {
	if s.hasBuffer {
		return s.bufType
	}
	return e.defBuf
}

func (e *env) streamOf(s *step) uint32 {
	if s.Stream != nil {
		return s.streamType
	}
	return e.dir
}

func (e *env) vars(name string) (map[string]string, string) {
	if rest, ok := strings.CutPrefix(name, "root."); ok {
		return e.root.vars, rest
	}
	if e.stream != nil {
		return e.stream.vars, name
	}
	return e.root.vars, name
}

// write puts v into a sink; an unset sink logs "<label>=<v>".
func (e *env) write(sk sink, label, v string) {
	switch sk.kind {
	case "", "log":
		if sk.name != "" {
			label = sk.name
		}
		hostLog(2, e.prefix()+label+"="+v)
	case "header":
		m := e.defaultMap()
		if sk.hasMap {
			m = sk.mapType
		}
		if st := replaceHeader(m, sk.name, v); st != statusOK {
			hostLog(3, e.prefix()+e.callback+": writing header "+sk.name+": status "+statusText(st))
		}
	case "var":
		vars, name := e.vars(sk.name)
		vars[name] = v
	case "property":
		if st := setProperty([]string{sk.name}, []byte(v)); st != statusOK {
			hostLog(3, e.prefix()+e.callback+": writing property "+sk.name+": status "+statusText(st))
		}
	case "shared":
		if st := setSharedData(sk.name, []byte(v), 0); st != statusOK {
			hostLog(3, e.prefix()+e.callback+": writing shared data "+sk.name+": status "+statusText(st))
		}
	}
}

// put writes a byte value to the step's "to", encoded per "encoding"
// (defaultEnc when the step sets none).
func (e *env) put(s *step, v []byte, defaultEnc string) {
	enc := s.Encoding
	if enc == "" {
		enc = defaultEnc
	}
	e.write(s.to, s.Op, encode(v, enc))
}

func (e *env) putText(s *step, v string) { e.write(s.to, s.Op, v) }

// status reports a hostcall status to the step's "status" sink; without one
// a failure is logged at warn.
func (e *env) status(s *step, st uint32) {
	if s.status.kind != "" {
		e.write(s.status, s.Op+".status", statusText(st))
		return
	}
	if st != statusOK {
		hostLog(3, e.prefix()+e.callback+": "+s.Op+": status "+statusText(st))
	}
}

func encode(v []byte, enc string) string {
	switch enc {
	case "hex":
		return hex.EncodeToString(v)
	case "base64":
		return base64.StdEncoding.EncodeToString(v)
	case "len":
		return itoa(int64(len(v)))
	case "pairs":
		pairs, err := parsePairs(v)
		if err != nil {
			return "bad-pairs: " + err.Error()
		}
		if pairs == nil {
			pairs = [][2]string{}
		}
		out, _ := json.Marshal(pairs)
		return string(out)
	case "u64le", "i64le", "f64le":
		if len(v) != 8 {
			return "bad-length:" + itoa(int64(len(v)))
		}
		u := binary.LittleEndian.Uint64(v)
		switch enc {
		case "u64le":
			return strconv.FormatUint(u, 10)
		case "i64le":
			return itoa(int64(u))
		}
		return strconv.FormatFloat(math.Float64frombits(u), 'g', -1, 64)
	case "u32le":
		if len(v) != 4 {
			return "bad-length:" + itoa(int64(len(v)))
		}
		return strconv.FormatUint(uint64(binary.LittleEndian.Uint32(v)), 10)
	case "bool":
		if len(v) != 1 {
			return "bad-length:" + itoa(int64(len(v)))
		}
		return boolText(v[0] != 0)
	}
	return string(v)
}

// errStatus turns an SDK error back into the host's status code.
func errStatus(err error) uint32 {
	switch {
	case err == nil:
		return statusOK
	case errors.Is(err, types.ErrorStatusNotFound):
		return statusNotFound
	case errors.Is(err, types.ErrorStatusBadArgument):
		return statusBadArgument
	case errors.Is(err, types.ErrorStatusEmpty):
		return statusEmpty
	case errors.Is(err, types.ErrorStatusCasMismatch):
		return statusCasMismatch
	case errors.Is(err, types.ErrorInternalFailure):
		return statusInternalFailure
	case errors.Is(err, types.ErrorUnimplemented):
		return statusUnimplemented
	}
	// "unknown status code: N"
	msg := err.Error()
	if i := strings.LastIndexByte(msg, ' '); i >= 0 {
		if n, perr := strconv.ParseUint(msg[i+1:], 10, 32); perr == nil {
			return uint32(n)
		}
	}
	return statusInternalFailure
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func u32or(p *uint32, def uint32) uint32 {
	if p == nil {
		return def
	}
	return *p
}

func i64or(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

// dispatchHTTP issues an http_call through the SDK (which owns the callback
// table) and runs the step's "then" steps, or on.http_call_response, in
// the issuing context when the response arrives.
func (e *env) dispatchHTTP(s *step) {
	var token uint32
	token, err := proxywasm.DispatchHttpCall(s.Cluster, s.Headers.list(), s.body, s.Trailers.list(),
		u32or(s.TimeoutMs, 1000), func(numHeaders, bodySize, numTrailers int) {
			c := e.child("http_call_response")
			c.args["token"] = itoa(int64(token))
			c.args["num_headers"] = itoa(int64(numHeaders))
			c.args["body_size"] = itoa(int64(bodySize))
			c.args["num_trailers"] = itoa(int64(numTrailers))
			c.runChild(s.Then)
		})
	e.status(s, errStatus(err))
	if err == nil {
		e.putText(s, itoa(int64(token)))
	}
}

func (e *env) dispatchRedis(s *step) {
	query := []byte(s.Resp)
	if len(s.Command) > 0 {
		query = respArray(s.Command)
	}
	var token uint32
	token, err := proxywasm.DispatchRedisCall(s.Cluster, query, func(status, responseSize int) {
		c := e.child("redis_call_response")
		c.args["token"] = itoa(int64(token))
		c.args["status"] = itoa(int64(status))
		c.args["response_size"] = itoa(int64(responseSize))
		c.runChild(s.Then)
	})
	e.status(s, errStatus(err))
	if err == nil {
		e.putText(s, itoa(int64(token)))
	}
}

// child is the environment of a callout callback issued from e: same
// context, same direction.
func (e *env) child(callback string) *env {
	calls := e.root.calls
	id := e.root.id
	if e.stream != nil {
		calls = e.stream.calls
		id = e.stream.id
	}
	calls[callback]++
	return &env{
		root: e.root, stream: e.stream, callback: callback, eos: true, call: calls[callback], dir: e.dir,
		args:   map[string]string{"context_id": itoa(int64(id)), "root_id": itoa(int64(e.root.id))},
		defBuf: defaultBuffer(callback),
	}
}

// runChild runs a callout's own steps, or the configured callback's.
func (e *env) runChild(then []*step) {
	if then != nil {
		e.runSteps(then)
		return
	}
	if cb := e.root.cfg.On[e.callback]; cb != nil {
		e.runSteps(cb.Steps)
	}
}

func respArray(args []string) []byte {
	out := []byte("*" + itoa(int64(len(args))) + "\r\n")
	for _, a := range args {
		out = append(out, "$"+itoa(int64(len(a)))+"\r\n"...)
		out = append(out, a...)
		out = append(out, "\r\n"...)
	}
	return out
}

func (e *env) metricID(s *step) (uint32, bool) {
	if s.ID != nil {
		return *s.ID, true
	}
	if id, ok := e.root.metrics[s.Name]; ok {
		return id, true
	}
	id, st := defineMetric(s.metricType, s.Name)
	if st != statusOK {
		e.status(s, st)
		return 0, false
	}
	e.root.metrics[s.Name] = id
	return id, true
}

func (e *env) queueID(s *step) (uint32, bool) {
	if s.ID != nil {
		return *s.ID, true
	}
	if id, ok := e.root.queues[s.Name]; ok {
		return id, true
	}
	id, st := resolveQueue(s.VMID, s.Name)
	if st != statusOK {
		e.status(s, st)
		return 0, false
	}
	e.root.queues[s.Name] = id
	return id, true
}
