package wasmhost

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// Module is a compiled plugin module. Safe for concurrent use.
type Module struct {
	compiled    wazero.CompiledModule
	SHA256      string
	Size        int
	ABI         ABIVersion
	CompileTime time.Duration
	start       string // "_initialize", "_start" or "" (start section only)
	allocator   string // "proxy_on_memory_allocate" or "malloc"
	exports     map[string]bool
}

// Imports lists the module's imports as "module.name".
func (m *Module) Imports() []string {
	var out []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
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
