package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"
)

// Inspection describes a module without running it.
type Inspection struct {
	Size        int           `json:"size"`
	SHA256      string        `json:"sha256"`
	ABI         string        `json:"abi"`
	Imports     []Import      `json:"imports"`
	Exports     []string      `json:"exports"`
	CompileTime time.Duration `json:"compileTimeNanos"`
	// LoopGuard is the loop guard the host would use: "instrumented", or
	// "wazero" when the rewrite cannot handle the module (LoopGuardProblem
	// says why).
	LoopGuard        string `json:"loopGuard"`
	LoopGuardProblem string `json:"loopGuardProblem,omitempty"`
	// Problems lists why the host would refuse the module (empty: loadable).
	Problems []string `json:"problems,omitempty"`
}

// Import is one imported function and whether the host provides it.
type Import struct {
	Module   string `json:"module"`
	Name     string `json:"name"`
	Provided bool   `json:"provided"`
}

// Inspect compiles wasm in a throw-away runtime (no cache) and reports its
// ABI, imports, exports, size, sha256 and compile time.
func Inspect(ctx context.Context, wasm []byte) (*Inspection, error) {
	sum := sha256.Sum256(wasm)
	out := &Inspection{Size: len(wasm), SHA256: hex.EncodeToString(sum[:])}
	if err := loopguard.CheckCounts(wasm); err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	start := time.Now()
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	out.CompileTime = time.Since(start)
	for name := range cm.ExportedFunctions() {
		out.Exports = append(out.Exports, name)
	}
	sort.Strings(out.Exports)
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		out.Imports = append(out.Imports, Import{Module: mod, Name: name, Provided: hostProvides(mod, name)})
	}
	sort.Slice(out.Imports, func(i, j int) bool {
		if out.Imports[i].Module != out.Imports[j].Module {
			return out.Imports[i].Module < out.Imports[j].Module
		}
		return out.Imports[i].Name < out.Imports[j].Name
	})
	out.LoopGuard = GuardInstrumented.String()
	if _, err := loopguard.Instrument(wasm, dispatched...); err != nil {
		out.LoopGuard, out.LoopGuardProblem = GuardWazero.String(), err.Error()
	}
	if _, err := newModule(cm, out.SHA256, len(wasm)); err != nil {
		out.Problems = append(out.Problems, err.Error())
	}
	out.ABI = ABIUnknown.String()
	exports := map[string]bool{}
	for _, e := range out.Exports {
		exports[e] = true
	}
	for _, mk := range abiMarkers {
		if exports[mk.export] {
			out.ABI = mk.version.String()
			break
		}
	}
	return out, nil
}
