// Package loopguard rewrites a WebAssembly binary so that its loops can be
// interrupted cheaply.
//
// Why: a guest stuck in a loop must not freeze the process. wazero's own
// answer, RuntimeConfig.WithCloseOnContextDone, compiles a check into every
// loop back-edge that leaves the JIT-compiled code and returns to Go on each
// iteration; on our plugins that makes guest calls about four times slower.
// The rewrite here keeps the check inside the guest: every loop counts down
// a budget held in a guest global, and only when the budget runs out (once
// every Budget iterations) does the guest call the host function
// ImportModule.ImportName, which lets the Go scheduler preempt the goroutine
// and checks for cancellation.
//
// What the rewrite does, on the binary format directly:
//   - it adds the function type () -> () unless the module has one, and
//     appends the import ImportModule.ImportName of that type after the
//     existing imports; every defined function's index grows by one, so
//     function indices are renumbered wherever they occur (call,
//     return_call and ref.func in code and in constant expressions,
//     element segments, exports, the start function, and the function and
//     local names of the "name" section);
//   - it appends one mutable i32 global initialised to Budget;
//   - right after the block type of every loop instruction it inserts
//     global.get g; i32.const 1; i32.sub; global.set g; global.get g;
//     i32.eqz; if; i32.const Budget; global.set g; call yield; end
//     (Wasm has no global.tee, hence the second global.get). The guard
//     runs on every entry to the loop's header, as wazero's check does: a
//     loop of n iterations yields about n/Budget times (the budget carries
//     over between loops and calls of the same instance).
//
// Like wazero's check, the guard sits in loops only: endless recursion
// through return_call is not interrupted (plain recursion ends in a stack
// overflow trap).
//
// Everything else is copied byte for byte, custom sections included. A
// renumbered index is written in its shortest encoding; name subsections
// the package does not know are dropped, since they might hold function
// indices; DWARF sections keep their old code offsets, so source lines in
// traps of instrumented modules that carry DWARF may be off.
//
// The decoder knows exactly the instructions and section layouts that
// wazero v1.12.0 decodes. Anything else (an unknown opcode or section, a
// legacy exception-handling instruction, malformed or truncated input) is an
// error, and the caller then runs the module unmodified under wazero's own
// guard: the package never guesses at an encoding it does not know.
//
// The same rewrite can add one more export, a dispatcher
// (DispatchExport): a single entry point that calls one of the named
// exports, so that a host entering the module through many exports uses
// one wazero call engine for all of them (dispatch.go).
//
// The package owns only the byte rewrite. It must not compile or run
// modules, and it does not implement the yield host function. All functions
// are safe for concurrent use.
package loopguard
