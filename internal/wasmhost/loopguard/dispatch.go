package loopguard

import (
	"errors"
	"fmt"
)

// DispatchExport names the function the rewrite adds when Instrument is
// given export names to dispatch and the module exports at least one of
// them with a dispatchable signature (see Dispatchable). Its type is
// (i32 case, i32 × DispatchParams) -> i64: case k calls the export named
// dispatch[k] with the first parameters it takes and returns its i32
// result zero-extended, or 0 when it has none. A case the module does not
// dispatch traps (unreachable).
//
// Why: wazero gives every exported function its own call engine and native
// stack. A host that enters a module through many exports, as a
// Proxy-Wasm host does, touches one cold stack per export; through the
// dispatcher every call shares one.
const DispatchExport = "sluice_dispatch"

// DispatchParams is the number of parameters the dispatcher forwards at
// most (proxy_on_http_call_response takes five).
const DispatchParams = 5

// Dispatchable reports whether a function with these parameter and result
// types can be called through the dispatcher: at most DispatchParams i32
// parameters, and no result or one i32. The types are the binary format's
// value type bytes (wazero's api.ValueType).
func Dispatchable(params, results []byte) bool {
	if len(params) > DispatchParams || len(results) > 1 {
		return false
	}
	for _, t := range params {
		if t != typeI32 {
			return false
		}
	}
	return len(results) == 0 || results[0] == typeI32
}

// IsDispatcherType reports whether params and results (value type bytes)
// are the dispatcher's type, for a host checking DispatchExport before it
// relies on it.
func IsDispatcherType(params, results []byte) bool {
	return string(params) == string(dispatcherParams[:]) && len(results) == 1 && results[0] == typeI64
}

// dispatcherParams are the dispatcher's parameter types.
var dispatcherParams = [1 + DispatchParams]byte{typeI32, typeI32, typeI32, typeI32, typeI32, typeI32}

// dispatchCase is one case of the dispatcher.
type dispatchCase struct {
	k   uint32 // index in the names given to Instrument
	fn  uint32 // function index before the rewrite
	sig sig
}

// sig is what the dispatcher needs of a function type.
type sig struct {
	dispatchable bool
	params       int
	results      int
}

// readSig reads a function type after its 0x60.
func (r *reader) readSig() (sig, error) {
	var s sig
	var types [2][]byte
	for i := range types {
		n, err := r.u32()
		if err != nil {
			return s, err
		}
		for range n {
			start := r.pos
			if err := r.valType(); err != nil {
				return s, err
			}
			types[i] = append(types[i], r.buf[start]) // first byte: the value type, or a ref prefix
		}
	}
	s.dispatchable = Dispatchable(types[0], types[1])
	s.params, s.results = len(types[0]), len(types[1])
	return s, nil
}

// scanFunctions records the type of every defined function.
func (w *rewriter) scanFunctions(body []byte) error {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return err
	}
	w.definedFuncs = n
	for i := uint32(0); i < n; i++ {
		t, err := r.u32()
		if err != nil {
			return fmt.Errorf("function %d: %w", i, err)
		}
		w.funcTypes = append(w.funcTypes, t)
	}
	if r.len() != 0 {
		return errSectionSize
	}
	return nil
}

// scanExports records the function exports by name.
func (w *rewriter) scanExports(body []byte) error {
	r := &reader{buf: body}
	n, err := r.u32()
	if err != nil {
		return err
	}
	w.funcExports = map[string]uint32{}
	for i := uint32(0); i < n; i++ {
		name, err := r.name()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		kind, err := r.readByte()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		idx, err := r.u32()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if kind == kindFunc {
			w.funcExports[string(name)] = idx
		}
	}
	if r.len() != 0 {
		return errSectionSize
	}
	return nil
}

// planDispatch picks the dispatcher's cases once the first pass has
// scanned types, imports, functions and exports.
func (w *rewriter) planDispatch(names []string, haveCode bool) error {
	if len(names) == 0 || !haveCode || w.funcExports == nil {
		return nil
	}
	for k, name := range names {
		fn, ok := w.funcExports[name]
		if !ok {
			continue
		}
		var t uint32
		switch {
		case fn < w.funcImports:
			t = w.importTypes[fn]
		case uint64(fn-w.funcImports) < uint64(len(w.funcTypes)):
			t = w.funcTypes[fn-w.funcImports]
		default:
			return fmt.Errorf("export %q: function index %d out of range", name, fn)
		}
		if uint64(t) >= uint64(len(w.sigs)) {
			return fmt.Errorf("export %q: type index %d out of range", name, t)
		}
		if s := w.sigs[t]; s.dispatchable {
			w.cases = append(w.cases, dispatchCase{k: uint32(k), fn: fn, sig: s})
		}
	}
	return nil
}

// appendDispatchType appends the dispatcher's type:
// (i32 × 1+DispatchParams) -> i64.
func appendDispatchType(out []byte) []byte {
	out = append(out, 0x60, byte(len(dispatcherParams)))
	out = append(out, dispatcherParams[:]...)
	return append(out, 1, typeI64)
}

// appendDispatchBody appends the dispatcher's code entry (size and body):
// one "if case == k { call; return }" per case, then unreachable.
func (w *rewriter) appendDispatchBody(out []byte) ([]byte, error) {
	body := []byte{0} // no locals
	for _, c := range w.cases {
		body = append(body, opLocalGet, 0, opI32Const)
		body = appendS32(body, int32(c.k))
		body = append(body, opI32Eq, opIf, blockEmpty)
		for i := range c.sig.params {
			body = append(body, opLocalGet, byte(1+i))
		}
		body = append(body, opCall)
		if c.fn >= w.funcImports { // defined functions move up by one (the yield import)
			body = appendU32(body, c.fn+1)
		} else {
			body = appendU32(body, c.fn)
		}
		if c.sig.results == 1 {
			body = append(body, opI64ExtendI32U)
		} else {
			body = append(body, opI64Const, 0)
		}
		body = append(body, opReturn, opEnd)
	}
	body = append(body, opUnreachable, opEnd)
	if len(body) > 1<<20 {
		return nil, errors.New("dispatcher too large")
	}
	out = appendU32(out, uint32(len(body)))
	return append(out, body...), nil
}

// appendDispatchExport appends the dispatcher's export entry.
func (w *rewriter) appendDispatchExport(out []byte) []byte {
	out = appendU32(out, uint32(len(DispatchExport)))
	out = append(out, DispatchExport...)
	out = append(out, kindFunc)
	return appendU32(out, w.dispatchFunc)
}

// recount returns a vector section with its count raised by extra, for
// entries the caller appends. The count was checked by the first pass.
func recount(body []byte, extra uint32) []byte {
	r := &reader{buf: body}
	n, _ := r.u32()
	out := appendU32(make([]byte, 0, len(body)+16), n+extra)
	return append(out, body[r.pos:]...)
}
