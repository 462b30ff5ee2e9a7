package loopguard

// A tiny assembler for hand-written test modules: each helper returns the
// bytes of one piece of the binary format.

// cat concatenates byte pieces.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// bs is a byte literal.
func bs(b ...byte) []byte { return b }

// u is an unsigned LEB128 (indices, counts).
func u(v uint32) []byte { return appendU32(nil, v) }

// str is a name: length and bytes.
func str(s string) []byte { return cat(u(uint32(len(s))), []byte(s)) }

// vec is a vector: count and items.
func vec(items ...[]byte) []byte { return cat(u(uint32(len(items))), cat(items...)) }

// sec is a section: id, size and content.
func sec(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat(bs(id), u(uint32(len(c))), c)
}

// mod is a module: header and sections.
func mod(sections ...[]byte) []byte {
	return cat(bs(0x00, 'a', 's', 'm', 1, 0, 0, 0), cat(sections...))
}

// functype is a function type with the given parameter and result types.
func functype(params, results []byte) []byte {
	return cat(bs(0x60), u(uint32(len(params))), params, u(uint32(len(results))), results)
}

// code is one entry of the code section: size, no locals, instructions
// (which must include the final end).
func code(instrs ...[]byte) []byte { return codeLocals(bs(0), instrs...) }

// codeLocals is code with an encoded locals vector.
func codeLocals(locals []byte, instrs ...[]byte) []byte {
	b := cat(locals, cat(instrs...))
	return cat(u(uint32(len(b))), b)
}

// importFunc is a function import of the given type index.
func importFunc(module, name string, typ uint32) []byte {
	return cat(str(module), str(name), bs(kindFunc), u(typ))
}

// export is an export entry.
func export(name string, kind byte, idx uint32) []byte {
	return cat(str(name), bs(kind), u(idx))
}

// Instructions.
func call(f uint32) []byte          { return cat(bs(opCall), u(f)) }
func refFunc(f uint32) []byte       { return cat(bs(opRefFunc), u(f)) }
func localGet(i uint32) []byte      { return cat(bs(opLocalGet), u(i)) }
func i32Const(v int32) []byte       { return cat(bs(opI32Const), appendS32(nil, v)) }
func globalGet(g uint32) []byte     { return cat(bs(opGlobalGet), u(g)) }
func constExpr(instr []byte) []byte { return cat(instr, bs(opEnd)) }

var (
	loop  = bs(opLoop, blockEmpty)
	block = bs(opBlock, blockEmpty)
	end   = bs(opEnd)
)

// yieldImport is the import entry the rewrite appends, of type typ.
func yieldImport(typ uint32) []byte { return importFunc(ImportModule, ImportName, typ) }

// guardGlobal is the global entry the rewrite appends.
var guardGlobal = bs(0x7f, 0x01, 0x41, 0x90, 0xce, 0x00, 0x0b) // (mut i32) (i32.const 10000)

// guard is the code the rewrite inserts after a loop's block type, written
// out independently of guardCode.
func guard(g, yield byte) []byte {
	return bs(
		0x23, g, // global.get g
		0x41, 0x01, // i32.const 1
		0x6b,    // i32.sub
		0x24, g, // global.set g
		0x23, g, // global.get g
		0x45,       // i32.eqz
		0x04, 0x40, // if
		0x41, 0x90, 0xce, 0x00, // i32.const 10000
		0x24, g, // global.set g
		0x10, yield, // call yield
		0x0b, // end
	)
}

// Value types.
var (
	i32  = bs(typeI32)
	none = bs()
)
