package loopguard

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// ImportModule and ImportName name the function import the rewrite adds. Its
// type is () -> ().
const (
	ImportModule = "sluice_loopguard"
	ImportName   = "yield"
)

// Budget is the number of loop iterations between two yields.
const Budget = 10000

// Version identifies the rewrite's output: the same input gives the same
// output for one Version. Bump it whenever Instrument's output changes, so
// that rewrites cached under an older version are not used.
const Version = 2

var (
	// errAlreadyInstrumented is returned for a module that already
	// imports ImportModule.ImportName.
	errAlreadyInstrumented = errors.New("already instrumented: the module imports " + ImportModule + "." + ImportName)
	errSectionSize         = errors.New("content does not match the section size")
	errNameSection         = errors.New("malformed name section")
)

// Instrument returns wasm with the loop guard added and, when dispatch
// names exports the module has with a dispatchable signature, the
// dispatcher export DispatchExport (case k calls dispatch[k]). It returns
// an error (and the caller falls back to wazero's own guard) for anything
// it cannot decode: unknown opcodes or sections it does not understand,
// malformed input. A module that already imports ImportModule.ImportName,
// or already exports DispatchExport while dispatch is not empty, is an
// error.
//
// The input is not modified; the output never aliases it.
func Instrument(wasm []byte, dispatch ...string) ([]byte, error) {
	out, err := instrument(wasm, dispatch)
	if err != nil {
		return nil, fmt.Errorf("loopguard: %w", err)
	}
	return out, nil
}

// Section ids of the binary format.
const (
	idCustom    = 0
	idType      = 1
	idImport    = 2
	idFunction  = 3
	idTable     = 4
	idMemory    = 5
	idGlobal    = 6
	idExport    = 7
	idStart     = 8
	idElement   = 9
	idCode      = 10
	idData      = 11
	idDataCount = 12
	idTag       = 13
)

// sectionRank gives the position a non-custom section must have: ranks
// strictly increase through a module. 0 means the id is unknown.
var sectionRank = [...]int{
	idType: 1, idImport: 2, idFunction: 3, idTable: 4, idMemory: 5,
	idTag: 6, idGlobal: 7, idExport: 8, idStart: 9, idElement: 10,
	idDataCount: 11, idCode: 12, idData: 13,
}

var sectionName = [...]string{
	idCustom: "custom", idType: "type", idImport: "import", idFunction: "function",
	idTable: "table", idMemory: "memory", idGlobal: "global", idExport: "export",
	idStart: "start", idElement: "element", idCode: "code", idData: "data",
	idDataCount: "data count", idTag: "tag",
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// section is one section of the input: its id and its content.
type section struct {
	id     byte
	offset int // of the content in the input, for error messages
	body   []byte
}

// split checks the header and cuts the module into sections, checking their
// framing and order.
func split(wasm []byte) ([]section, error) {
	if len(wasm) < 4 || !bytes.Equal(wasm[:4], header[:4]) {
		return nil, errors.New("not a WebAssembly binary (bad magic number)")
	}
	if len(wasm) < 8 || !bytes.Equal(wasm[4:8], header[4:]) {
		return nil, errors.New("unsupported binary format version (want 1)")
	}
	r := reader{buf: wasm, pos: len(header)}
	var sections []section
	last := 0
	for r.len() > 0 {
		at := r.pos
		id, _ := r.readByte()
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section at offset %#x: size: %w", at, err)
		}
		offset := r.pos
		body, err := r.take(size)
		if err != nil {
			return nil, fmt.Errorf("section at offset %#x: %d bytes: %w", at, size, err)
		}
		if id != idCustom {
			if int(id) >= len(sectionRank) || sectionRank[id] == 0 {
				return nil, fmt.Errorf("unknown section id %d at offset %#x", id, at)
			}
			if sectionRank[id] <= last {
				return nil, fmt.Errorf("%s section at offset %#x is out of order or repeated", sectionName[id], at)
			}
			last = sectionRank[id]
		}
		sections = append(sections, section{id: id, offset: offset, body: body})
	}
	return sections, nil
}

// rewriter holds what the rewrite of one module needs to know.
type rewriter struct {
	funcImports   uint32 // imported functions before the rewrite; the yield import's index
	globalImports uint32
	globals       uint32 // defined globals before the rewrite
	types         uint32 // types before the rewrite
	voidType      int64  // index of a standalone () -> () type, -1 if none
	yieldType     uint32
	guardGlobal   uint32
	guard         []byte // inserted after every loop's block type
	scratch       []byte // one rewritten function body

	// The dispatcher (dispatch.go).
	sigs         []sig             // by type index
	importTypes  []uint32          // type of each imported function
	funcTypes    []uint32          // type of each defined function
	definedFuncs uint32            // defined functions before the rewrite
	funcExports  map[string]uint32 // function exports by name; nil without an export section
	cases        []dispatchCase    // empty: no dispatcher
	dispatchType uint32
	dispatchFunc uint32
}

func instrument(wasm []byte, dispatch []string) ([]byte, error) {
	sections, err := split(wasm)
	if err != nil {
		return nil, err
	}
	w := &rewriter{voidType: -1}
	haveCode := false
	// First pass: the counts the renumbering needs. A custom section (the
	// name section) may come before the import section.
	for _, s := range sections {
		var err error
		switch s.id {
		case idType:
			err = w.scanTypes(s.body)
		case idImport:
			err = w.scanImports(s.body)
		case idGlobal:
			w.globals, err = (&reader{buf: s.body}).u32()
		case idFunction:
			err = w.scanFunctions(s.body)
		case idExport:
			err = w.scanExports(s.body)
		case idCode:
			haveCode = true
		}
		if err != nil {
			return nil, fmt.Errorf("%s section at offset %#x: %w", sectionName[s.id], s.offset, err)
		}
	}
	if _, ok := w.funcExports[DispatchExport]; ok && len(dispatch) > 0 {
		return nil, errors.New("the module already exports " + DispatchExport)
	}
	if err := w.planDispatch(dispatch, haveCode); err != nil {
		return nil, err
	}
	if w.funcImports == math.MaxUint32 || w.globalImports+w.globals < w.globalImports ||
		w.globalImports+w.globals == math.MaxUint32 {
		return nil, errors.New("index space full")
	}
	if w.voidType >= 0 {
		w.yieldType = uint32(w.voidType)
	} else {
		w.yieldType = w.types
	}
	w.guardGlobal = w.globalImports + w.globals
	w.guard = guardCode(w.guardGlobal, w.funcImports)
	if len(w.cases) > 0 {
		w.dispatchType = w.types
		if w.voidType < 0 {
			w.dispatchType++ // after the () -> () type the rewrite adds
		}
		w.dispatchFunc = w.funcImports + 1 + w.definedFuncs
		if w.dispatchFunc < w.definedFuncs {
			return nil, errors.New("index space full")
		}
	}

	out := make([]byte, 0, len(wasm)+len(wasm)/16+64)
	out = append(out, header...)
	var haveType, haveImport, haveGlobal bool
	// create adds the sections the rewrite needs that the input lacks,
	// before the first section that must follow them.
	create := func(rank int) {
		if !haveType && w.voidType < 0 && sectionRank[idType] < rank {
			out = appendSection(out, idType, []byte{1, 0x60, 0, 0})
			haveType = true
		}
		if !haveImport && sectionRank[idImport] < rank {
			out = appendSection(out, idImport, w.appendYieldImport([]byte{1}))
			haveImport = true
		}
		if !haveGlobal && sectionRank[idGlobal] < rank {
			out = appendSection(out, idGlobal, appendGuardGlobal([]byte{1}))
			haveGlobal = true
		}
	}
	for _, s := range sections {
		if s.id != idCustom {
			create(sectionRank[s.id])
		}
		var body []byte
		var err error
		switch s.id {
		case idCustom:
			body, err = w.custom(s.body)
		case idType:
			body, haveType = w.typeSection(s.body), true
		case idImport:
			body, haveImport = w.importSection(s.body), true
		case idTable:
			body, err = w.tableSection(s.body)
		case idGlobal:
			body, err = w.globalSection(s.body)
			haveGlobal = true
		case idFunction:
			body = s.body
			if len(w.cases) > 0 {
				body = appendU32(recount(body, 1), w.dispatchType)
			}
		case idExport:
			body, err = w.exportSection(s.body)
			if err == nil && len(w.cases) > 0 {
				body = w.appendDispatchExport(recount(body, 1))
			}
		case idStart:
			body, err = w.startSection(s.body)
		case idElement:
			body, err = w.elementSection(s.body)
		case idCode:
			body, err = w.codeSection(s.body)
			if err == nil && len(w.cases) > 0 {
				body, err = w.appendDispatchBody(recount(body, 1))
			}
		case idData:
			body, err = w.dataSection(s.body)
		default: // memory, tag, data count: no function indices
			body = s.body
		}
		if err == nil && uint64(len(body)) > math.MaxUint32 {
			err = errors.New("grows beyond 4 GiB")
		}
		if err != nil {
			return nil, fmt.Errorf("%s section at offset %#x: %w", sectionName[s.id], s.offset, err)
		}
		out = appendSection(out, s.id, body)
	}
	create(math.MaxInt)
	return out, nil
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

// funcIndex copies a function index from r to out, renumbered.
func (w *rewriter) funcIndex(r *reader, out []byte) ([]byte, error) {
	start := r.pos
	idx, err := r.u32()
	if err != nil {
		return nil, err
	}
	if idx < w.funcImports {
		return append(out, r.buf[start:r.pos]...), nil
	}
	if idx == math.MaxUint32 {
		return nil, errors.New("function index overflows")
	}
	return appendU32(out, idx+1), nil
}

// guardCode returns the instructions inserted at the top of every loop.
// (There is no global.tee, hence the second global.get.)
func guardCode(global, yield uint32) []byte {
	var g []byte
	g = appendU32(append(g, opGlobalGet), global)
	g = append(g, opI32Const, 1, opI32Sub)
	g = appendU32(append(g, opGlobalSet), global)
	g = appendU32(append(g, opGlobalGet), global)
	g = append(g, opI32Eqz, opIf, blockEmpty)
	g = appendS32(append(g, opI32Const), Budget)
	g = appendU32(append(g, opGlobalSet), global)
	g = appendU32(append(g, opCall), yield)
	return append(g, opEnd)
}
