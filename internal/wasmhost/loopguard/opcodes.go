package loopguard

// Opcodes, as wazero v1.12.0 decodes them (internal/wasm/instruction.go and
// func_validation.go of wazero).
const (
	opUnreachable        = 0x00
	opNop                = 0x01
	opBlock              = 0x02
	opLoop               = 0x03
	opIf                 = 0x04
	opElse               = 0x05
	opLegacyTry          = 0x06
	opLegacyCatch        = 0x07
	opThrow              = 0x08
	opLegacyRethrow      = 0x09
	opThrowRef           = 0x0a
	opEnd                = 0x0b
	opBr                 = 0x0c
	opBrIf               = 0x0d
	opBrTable            = 0x0e
	opReturn             = 0x0f
	opCall               = 0x10
	opCallIndirect       = 0x11
	opReturnCall         = 0x12
	opReturnCallIndirect = 0x13
	opCallRef            = 0x14
	opReturnCallRef      = 0x15
	opLegacyDelegate     = 0x18
	opLegacyCatchAll     = 0x19
	opDrop               = 0x1a
	opSelect             = 0x1b
	opSelectTyped        = 0x1c
	opTryTable           = 0x1f
	opLocalGet           = 0x20
	opLocalSet           = 0x21
	opLocalTee           = 0x22
	opGlobalGet          = 0x23
	opGlobalSet          = 0x24
	opTableGet           = 0x25
	opTableSet           = 0x26
	opI32Load            = 0x28 // first of the loads and stores (memarg)
	opI64Store32         = 0x3e // last of the loads and stores
	opMemorySize         = 0x3f
	opMemoryGrow         = 0x40
	opI32Const           = 0x41
	opI64Const           = 0x42
	opF32Const           = 0x43
	opF64Const           = 0x44
	opI32Eqz             = 0x45 // first numeric instruction (no immediates)
	opI32Eq              = 0x46
	opI32Add             = 0x6a
	opI32Sub             = 0x6b
	opI32Mul             = 0x6c
	opI64Add             = 0x7c
	opI64Sub             = 0x7d
	opI64Mul             = 0x7e
	opI64ExtendI32U      = 0xad
	opI64Extend32S       = 0xc4 // last numeric instruction (sign extension)
	opRefNull            = 0xd0
	opRefIsNull          = 0xd1
	opRefFunc            = 0xd2
	opRefAsNonNull       = 0xd4
	opBrOnNull           = 0xd5
	opBrOnNonNull        = 0xd6
	prefixMisc           = 0xfc
	prefixSIMD           = 0xfd
	prefixAtomic         = 0xfe

	blockEmpty = 0x40 // the empty block type
)

// Catch clauses of try_table.
const (
	catchTag    = 0x00 // tag index, label
	catchTagRef = 0x01 // tag index, label
	catchAll    = 0x02 // label
	catchAllRef = 0x03 // label
)

// 0xFC instructions (u32 after the prefix).
const (
	miscI64TruncSatF64U = 7 // 0-7: saturating truncations, no immediates
	miscMemoryInit      = 8
	miscDataDrop        = 9
	miscMemoryCopy      = 10
	miscMemoryFill      = 11
	miscTableInit       = 12
	miscElemDrop        = 13
	miscTableCopy       = 14
	miscTableGrow       = 15
	miscTableFill       = 17
)

// 0xFE instructions (u32 after the prefix).
const (
	atomicWait64      = 0x02 // 0x00-0x02: notify, wait32, wait64 (memarg)
	atomicFence       = 0x03 // one 0x00 byte
	atomicFirstAccess = 0x10 // 0x10-0x4e: loads, stores, read-modify-writes (memarg)
	atomicLastAccess  = 0x4e
)

// simdImmediate says what follows a 0xFD opcode.
type simdImmediate uint8

const (
	simdUnknown    simdImmediate = iota
	simdNone                     // no immediates
	simdMemarg                   // loads and stores
	simdMemargLane               // load/store lane: memarg, lane byte
	simdLane                     // extract/replace lane: lane byte
	simdBytes16                  // v128.const, i8x16.shuffle
)

const simdV128Const = 0x0c

// simdImmediates covers the 236 instructions of the fixed-width SIMD
// proposal as merged into WebAssembly 2.0; relaxed SIMD (0x100 and up) is
// not decoded by wazero v1.12.0.
var simdImmediates = func() (t [256]simdImmediate) {
	set := func(k simdImmediate, from, to int) {
		for op := from; op <= to; op++ {
			t[op] = k
		}
	}
	set(simdMemarg, 0x00, 0x0b)     // v128.load* and v128.store
	set(simdBytes16, 0x0c, 0x0d)    // v128.const, i8x16.shuffle
	set(simdNone, 0x0e, 0x14)       // swizzle, splats
	set(simdLane, 0x15, 0x22)       // extract_lane, replace_lane
	set(simdNone, 0x23, 0x53)       // comparisons, bitwise, any_true
	set(simdMemargLane, 0x54, 0x5b) // v128.load*_lane, v128.store*_lane
	set(simdMemarg, 0x5c, 0x5d)     // v128.load32_zero, v128.load64_zero
	set(simdNone, 0x5e, 0xff)       // arithmetic and conversions
	// Opcodes the proposal left unassigned.
	for _, op := range []int{
		0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee,
	} {
		t[op] = simdUnknown
	}
	return t
}()
