package loopguard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// runModule is a module that exercises what the rewrite renumbers: an
// imported function, calls, call_indirect through an element segment,
// ref.func in code and in a global, a start function with a loop, a name
// section. Function indices (before the rewrite):
//
//	0 env.add1 (i32) -> i32 (imported)
//	1 sum(n): 0+1+...+(n-1), one loop iteration per term; named "summing"
//	2 double(x), 3 triple(x)
//	4 dispatch(i, x): table[i](x)
//	5 viaref(x): table[2] = ref.func triple; table[2](x)
//	6 viaglobal(x): table[2] = global 1 (ref.func double); table[2](x)
//	7 callimport(x): double(add1(x))
//	8 start: global 0 += 1 while global 0 < 3 (three iterations)
//	9 started(): global 0
//	10 boom(): unreachable; named "kaboom"
//	11 spin(): loops forever
func runModule() []byte {
	// Type indices: () -> (), (i32) -> i32, (i32 i32) -> i32, () -> i32.
	fV, fI, fII, fR := u(0), u(1), u(2), u(3)
	callIndirect := bs(opCallIndirect, 1, 0)
	tableSet2 := func(ref []byte) []byte { return cat(i32Const(2), ref, bs(opTableSet, 0)) }
	return mod(
		sec(idType, vec(tVoid, tII, functype(bs(typeI32, typeI32), i32), functype(none, i32))),
		sec(idImport, vec(importFunc("env", "add1", 1))),
		sec(idFunction, vec(fI, fI, fI, fII, fI, fI, fI, fV, fR, fV, fV)),
		sec(idTable, vec(cat(bs(typeFuncref, 0), u(3)))),
		sec(idGlobal, vec(
			cat(bs(typeI32, 1), constExpr(i32Const(0))),
			cat(bs(typeFuncref, 0), constExpr(refFunc(2))),
		)),
		sec(idExport, vec(
			export("sum", kindFunc, 1), export("dispatch", kindFunc, 4), export("viaref", kindFunc, 5),
			export("viaglobal", kindFunc, 6), export("callimport", kindFunc, 7), export("started", kindFunc, 9),
			export("boom", kindFunc, 10), export("spin", kindFunc, 11),
		)),
		sec(idStart, u(8)),
		sec(idElement, vec(
			cat(u(0), constExpr(i32Const(0)), vec(u(2), u(3))),
			cat(u(3), bs(0), vec(u(3))),
		)),
		sec(idCode, vec(
			codeLocals(vec(cat(u(2), i32)), // 1 sum; locals 1: i, 2: acc
				loop,
				localGet(2), localGet(1), bs(opI32Add, opLocalSet, 2),
				localGet(1), i32Const(1), bs(opI32Add, opLocalTee, 1),
				localGet(0), bs(0x49 /* i32.lt_u */, opBrIf, 0),
				end,
				localGet(2), end),
			code(localGet(0), i32Const(2), bs(opI32Mul), end),                          // 2 double
			code(localGet(0), i32Const(3), bs(opI32Mul), end),                          // 3 triple
			code(localGet(1), localGet(0), callIndirect, end),                          // 4 dispatch
			code(tableSet2(refFunc(3)), localGet(0), i32Const(2), callIndirect, end),   // 5 viaref
			code(tableSet2(globalGet(1)), localGet(0), i32Const(2), callIndirect, end), // 6 viaglobal
			code(localGet(0), call(0), call(2), end),                                   // 7 callimport
			code(loop, globalGet(0), i32Const(1), bs(opI32Add, opGlobalSet, 0), // 8 start
				globalGet(0), i32Const(3), bs(0x49, opBrIf, 0), end, end),
			code(globalGet(0), end),           // 9 started
			code(bs(opUnreachable), end),      // 10 boom
			code(loop, bs(opBr, 0), end, end), // 11 spin
		)),
		sec(idCustom, str("name"), subsec(nameFunctions, vec(cat(u(1), str("summing")), cat(u(10), str("kaboom"))))),
	)
}

// errStop is what the test's yield panics with to end a guest loop.
var errStop = errors.New("stop the guest")

// instance instantiates wasm with env.add1 and, when yield is not nil, the
// yield host function.
func instance(t *testing.T, wasm []byte, yield func(context.Context)) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { _ = r.Close(ctx) })
	if _, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(_ context.Context, x uint32) uint32 { return x + 1 }).Export("add1").
		Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	if yield != nil {
		if _, err := r.NewHostModuleBuilder(ImportModule).NewFunctionBuilder().
			WithFunc(yield).Export(ImportName).Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInstrumentedModuleRuns(t *testing.T) {
	orig := runModule()
	inst, err := Instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		fn     string
		params []uint64
		want   uint64
		yields int64 // in total, after the call
	}{
		// The start function's loop ran 3 times: 9997 iterations left.
		{"started", nil, 3, 0},
		{"sum", []uint64{9996}, 9996 * 9995 / 2, 0}, // 1 left
		{"sum", []uint64{1}, 0, 1},                  // the budget runs out
		{"sum", []uint64{25000}, 25000 * 24999 / 2, 3},
		{"dispatch", []uint64{0, 21}, 42, 3},
		{"dispatch", []uint64{1, 21}, 63, 3},
		{"viaref", []uint64{5}, 15, 3},
		{"viaglobal", []uint64{5}, 10, 3},
		{"callimport", []uint64{4}, 10, 3},
	}
	ctx := context.Background()
	for _, m := range []struct {
		name string
		wasm []byte
	}{{"original", orig}, {"instrumented", inst}} {
		t.Run(m.name, func(t *testing.T) {
			var yields atomic.Int64
			mod := instance(t, m.wasm, func(context.Context) { yields.Add(1) })
			for _, c := range calls {
				got, err := mod.ExportedFunction(c.fn).Call(ctx, c.params...)
				if err != nil {
					t.Fatalf("%s%v: %v", c.fn, c.params, err)
				}
				if len(got) != 1 || got[0] != c.want {
					t.Errorf("%s%v = %v, want %d", c.fn, c.params, got, c.want)
				}
				want := c.yields
				if m.name == "original" {
					want = 0
				}
				if n := yields.Load(); n != want {
					t.Errorf("after %s%v: %d yields, want %d", c.fn, c.params, n, want)
				}
			}
			// A trap names the function from the renumbered name section.
			_, err := mod.ExportedFunction("boom").Call(ctx)
			if err == nil || !strings.Contains(err.Error(), "kaboom") {
				t.Errorf("boom: error %v, want a trap in kaboom", err)
			}
		})
	}
}

// TestYieldEndsEndlessLoop shows what the guard is for: a guest that loops
// forever reaches the host every Budget iterations, and the host can end it.
func TestYieldEndsEndlessLoop(t *testing.T) {
	inst, err := Instrument(runModule())
	if err != nil {
		t.Fatal(err)
	}
	var yields atomic.Int64
	mod := instance(t, inst, func(context.Context) {
		if yields.Add(1) == 3 {
			panic(errStop)
		}
	})
	_, err = mod.ExportedFunction("spin").Call(context.Background())
	if !errors.Is(err, errStop) {
		t.Fatalf("spin: error %v, want %v", err, errStop)
	}
	if n := yields.Load(); n != 3 {
		t.Errorf("%d yields, want 3", n)
	}
}

// TestInstrumentedImports checks the import list wazero sees.
func TestInstrumentedImports(t *testing.T) {
	inst, err := Instrument(runModule())
	if err != nil {
		t.Fatal(err)
	}
	cm, err := compile(t, inst, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range cm.ImportedFunctions() {
		module, name, _ := f.Import()
		got = append(got, module+"."+name)
	}
	if want := []string{"env.add1", ImportModule + "." + ImportName}; !slices.Equal(got, want) {
		t.Errorf("imports %v, want %v", got, want)
	}
	yield := cm.ImportedFunctions()[1]
	if len(yield.ParamTypes()) != 0 || len(yield.ResultTypes()) != 0 {
		t.Errorf("yield has type %v -> %v, want () -> ()", yield.ParamTypes(), yield.ResultTypes())
	}
}
