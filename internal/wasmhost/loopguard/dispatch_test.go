package loopguard

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDispatchable(t *testing.T) {
	for _, tc := range []struct {
		params, results []byte
		want            bool
	}{
		{nil, nil, true},
		{bs(typeI32, typeI32, typeI32, typeI32, typeI32), bs(typeI32), true},
		{bs(typeI32, typeI32, typeI32, typeI32, typeI32, typeI32), nil, false}, // six parameters
		{bs(typeI64), bs(typeI32), false},
		{bs(typeI32), bs(typeI64), false},
		{nil, bs(typeI32, typeI32), false},
		{bs(typeFuncref), nil, false},
	} {
		if got := Dispatchable(tc.params, tc.results); got != tc.want {
			t.Errorf("Dispatchable(%x, %x) = %v, want %v", tc.params, tc.results, got, tc.want)
		}
	}
}

// TestDispatcherCallsEachCase runs runModule rewritten with a dispatcher
// and calls every case: each reaches the export of its name with the
// parameters it takes, results come back zero-extended (0 for none), and a
// case the module does not have traps.
func TestDispatcherCallsEachCase(t *testing.T) {
	names := []string{"missing", "sum", "dispatch", "started", "boom", "callimport", "viaref"}
	inst, err := Instrument(runModule(), names...)
	if err != nil {
		t.Fatal(err)
	}
	var yields atomic.Int64
	mod := instance(t, inst, func(context.Context) { yields.Add(1) })
	d := mod.ExportedFunction(DispatchExport)
	if d == nil {
		t.Fatalf("no export %s", DispatchExport)
	}
	def := d.Definition()
	if len(def.ParamTypes()) != 1+DispatchParams || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != typeI64 {
		t.Fatalf("%s has type %v -> %v", DispatchExport, def.ParamTypes(), def.ResultTypes())
	}
	ctx := context.Background()
	call := func(k uint64, args ...uint64) (uint64, error) {
		st := make([]uint64, 1+DispatchParams)
		st[0] = k
		copy(st[1:], args)
		// Parameters a case does not take are ignored: fill them.
		for i := 1 + len(args); i < len(st); i++ {
			st[i] = 0xdead
		}
		err := d.CallWithStack(ctx, st)
		return st[0], err
	}
	for _, c := range []struct {
		k    uint64
		args []uint64
		want uint64
	}{
		{1, []uint64{10}, 45},    // sum
		{2, []uint64{0, 21}, 42}, // dispatch: table[0] = double
		{2, []uint64{1, 21}, 63}, // table[1] = triple
		{3, nil, 3},              // started: the start function ran
		{5, []uint64{4}, 10},     // callimport: double(add1(4))
		{6, []uint64{5}, 15},     // viaref
	} {
		got, err := call(c.k, c.args...)
		if err != nil {
			t.Fatalf("case %d%v: %v", c.k, c.args, err)
		}
		if got != c.want {
			t.Errorf("case %d%v = %d, want %d", c.k, c.args, got, c.want)
		}
	}
	// An i32 result comes back zero-extended: sum(65536+1) overflows to a
	// value with the top bit set.
	got, err := call(1, 65537)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(uint32(65537 * 65536 / 2)); got != want {
		t.Errorf("case 1[65537] = %#x, want %#x (zero-extended)", got, want)
	}
	// Loops under the dispatcher still count towards the guard.
	if yields.Load() == 0 {
		t.Error("no yield after 65537 loop iterations under the dispatcher")
	}
	if _, err := call(4); err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Errorf("case 4 (boom): error %v, want a trap in kaboom", err)
	}
	if _, err := call(0); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("case 0 (not exported): error %v, want unreachable", err)
	}
	if _, err := call(uint64(len(names))); err == nil {
		t.Error("a case beyond the names did not trap")
	}
	// The exports themselves still work.
	if got, err := mod.ExportedFunction("sum").Call(ctx, 10); err != nil || got[0] != 45 {
		t.Errorf("sum(10) = %v, %v", got, err)
	}
}

// TestDispatcherSkipsOtherSignatures: exports whose types the dispatcher
// cannot forward are left out (their case traps), a re-exported import is
// dispatched, and no names means no dispatcher.
func TestDispatcherSkipsOtherSignatures(t *testing.T) {
	// Types: 0 (i32) -> i32, 1 (i64) -> i64, 2 (i32) -> ().
	m := mod(
		sec(idType, vec(functype(bs(typeI32), bs(typeI32)), functype(bs(typeI64), bs(typeI64)), functype(bs(typeI32), nil))),
		sec(idImport, vec(importFunc("env", "add1", 0))),
		sec(idFunction, vec(u(1), u(2))),
		sec(idExport, vec(export("wide", kindFunc, 1), export("sink", kindFunc, 2), export("add1", kindFunc, 0))),
		sec(idCode, vec(
			code(localGet(0), end), // wide
			code(end),              // sink
		)),
	)
	inst, err := Instrument(m, "wide", "sink", "add1")
	if err != nil {
		t.Fatal(err)
	}
	mod := instance(t, inst, func(context.Context) {})
	d := mod.ExportedFunction(DispatchExport)
	if d == nil {
		t.Fatalf("no export %s", DispatchExport)
	}
	ctx := context.Background()
	if _, err := d.Call(ctx, 0, 1, 0, 0, 0, 0); err == nil {
		t.Error("case 0 (wide, i64) did not trap")
	}
	if got, err := d.Call(ctx, 1, 7, 0, 0, 0, 0); err != nil || got[0] != 0 {
		t.Errorf("case 1 (sink) = %v, %v; want 0", got, err)
	}
	if got, err := d.Call(ctx, 2, 41, 0, 0, 0, 0); err != nil || got[0] != 42 {
		t.Errorf("case 2 (add1, an import) = %v, %v; want 42", got, err)
	}

	plain, err := Instrument(m)
	if err != nil {
		t.Fatal(err)
	}
	if instance(t, plain, func(context.Context) {}).ExportedFunction(DispatchExport) != nil {
		t.Errorf("%s added without names to dispatch", DispatchExport)
	}
	none, err := Instrument(m, "wide")
	if err != nil {
		t.Fatal(err)
	}
	if instance(t, none, func(context.Context) {}).ExportedFunction(DispatchExport) != nil {
		t.Errorf("%s added though no named export can be dispatched", DispatchExport)
	}
}

func TestDispatcherNameTaken(t *testing.T) {
	m := mod(
		sec(idType, vec(functype(nil, nil))),
		sec(idFunction, vec(u(0))),
		sec(idExport, vec(export(DispatchExport, kindFunc, 0))),
		sec(idCode, vec(code(end))),
	)
	if _, err := Instrument(m, "x"); err == nil || !strings.Contains(err.Error(), "already exports") {
		t.Errorf("Instrument: error %v, want already exports", err)
	}
	if _, err := Instrument(m); err != nil {
		t.Errorf("Instrument without names: %v", err)
	}
}
