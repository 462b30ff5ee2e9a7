package wasmhost

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"
)

// Module is a compiled plugin module. Safe for concurrent use.
type Module struct {
	compiled    wazero.CompiledModule
	r           wazero.Runtime // the runtime that compiled it (instances live there)
	Guard       Guard
	SHA256      string
	Size        int
	ABI         ABIVersion
	CompileTime time.Duration
	start       string // "_initialize", "_start" or "" (start section only)
	allocator   string // "proxy_on_memory_allocate" or "malloc"
	exports     map[string]bool
	// users counts the plugins built on the module that are not closed
	// yet; Runtime.Sweep drops modules without any. Guarded by Runtime.mu.
	users int
}

// Guard is how a module's loops are guarded.
type Guard int

// Loop guards.
const (
	// GuardNone: compiled without a loop guard (NoLoopGuard).
	GuardNone Guard = iota
	// GuardInstrumented: the module was rewritten to yield every
	// loopguard.Budget loop iterations.
	GuardInstrumented
	// GuardWazero: the rewrite failed; wazero's own guard (an exit to Go
	// at every loop back-edge) is used.
	GuardWazero
)

// String names the guard as /config_dump and `sluice plugin inspect` show it.
func (g Guard) String() string {
	switch g {
	case GuardInstrumented:
		return "instrumented"
	case GuardWazero:
		return "wazero"
	}
	return "off"
}

// Imports lists the module's imports as "module.name".
func (m *Module) Imports() []string {
	var out []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == loopguard.ImportModule && m.Guard == GuardInstrumented {
			continue // added by the loop guard
		}
		out = append(out, mod+"."+name)
	}
	sort.Strings(out)
	return out
}

// Exports lists the module's exported functions.
func (m *Module) Exports() []string {
	var out []string
	for name := range m.exports {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// MissingImports lists imports the host does not provide.
func (m *Module) MissingImports() []string {
	var out []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == loopguard.ImportModule && m.Guard == GuardInstrumented {
			continue // added by the loop guard
		}
		if !hostProvides(mod, name) {
			out = append(out, mod+"."+name)
		}
	}
	return out
}

func newModule(cm wazero.CompiledModule, sum string, size int) (*Module, error) {
	m := &Module{compiled: cm, SHA256: sum, Size: size, exports: map[string]bool{}}
	for name := range cm.ExportedFunctions() {
		m.exports[name] = true
	}
	for _, mk := range abiMarkers {
		if m.exports[mk.export] {
			m.ABI = mk.version
			break
		}
	}
	if m.ABI == ABIUnknown {
		return nil, fmt.Errorf("missing or unknown Proxy-Wasm ABI version (no proxy_abi_version_* export)")
	}
	if m.ABI == ABI010 {
		return nil, fmt.Errorf("Proxy-Wasm ABI 0.1.0 is not supported (rebuild the plugin with an SDK for ABI 0.2.x)")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return nil, fmt.Errorf("module does not export its memory as \"memory\"")
	}
	switch {
	case m.exports["proxy_on_memory_allocate"]:
		m.allocator = "proxy_on_memory_allocate"
	case m.exports["malloc"]:
		m.allocator = "malloc"
	default:
		return nil, fmt.Errorf("module exports neither proxy_on_memory_allocate nor malloc")
	}
	switch {
	case m.exports["_initialize"]:
		m.start = "_initialize"
	case m.exports["_start"]:
		m.start = "_start"
	}
	if missing := m.MissingImports(); len(missing) > 0 {
		return nil, fmt.Errorf("module imports functions the host does not provide: %s", strings.Join(missing, ", "))
	}
	return m, nil
}
