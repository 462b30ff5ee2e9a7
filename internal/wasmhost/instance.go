package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sluicegw/sluice/internal/wasmhost/loopguard"
)

var errInstanceDead = errors.New("plugin instance is dead")

type instKey struct{}

// instFrom returns the instance a hostcall runs for.
func instFrom(ctx context.Context) *Instance {
	in, _ := ctx.Value(instKey{}).(*Instance)
	return in
}

// guestContext is one Proxy-Wasm context inside an instance.
type guestContext struct {
	id     uint32
	root   uint32 // 0 for root contexts
	stream *Filter
	rs     *rootState // root contexts only
}

// rootState is what a root (plugin) context owns.
type rootState struct {
	config     []byte
	tickPeriod time.Duration
	tickStop   chan struct{}
	deleted    bool
	retiring   bool     // its version retired: it ends with its last stream
	streams    int      // streams attached to it
	ver        *version // the configuration version it runs
}

// Instance is one instantiated module. It runs one guest call at a time;
// mu is held for the duration of a call. Fields below mu are protected by it.
type Instance struct {
	plugin *Plugin
	id     int
	mod    api.Module
	mem    api.Memory
	logger *slog.Logger

	callCtx context.Context
	abi     ABIVersion

	// fnAlloc is the guest's allocator. It runs inside other guest calls
	// (memory.go), so it is not timed.
	fnAlloc api.Function
	// The callback exports, nil when the module lacks one.
	fnContextCreate, fnVMStart, fnConfigure   *export
	fnReqHeaders, fnReqBody, fnReqTrailers    *export
	fnRespHeaders, fnRespBody, fnRespTrailers *export
	fnHTTPResp, fnRedisResp, fnTick           *export
	fnQueueReady, fnLog, fnDone, fnDelete     *export
	fnForeign                                 *export

	dead atomic.Bool
	// needRebuild is set when the plugin asks to be recycled (wasm_need_rebuild).
	needRebuild atomic.Bool
	streams     atomic.Int64 // streams pinned here
	lastPick    uint64       // Pool.picks when a stream was last pinned here; guarded by Pool.mu
	closed      atomic.Bool
	// memBytes is the linear memory size after the last guest call, for
	// readers that do not hold mu (the guest may grow memory meanwhile).
	memBytes atomic.Uint64

	mu        sync.Mutex
	stack     []uint64
	nextID    uint32
	contexts  map[uint32]*guestContext
	roots     map[*version]uint32 // the root context of each version started here
	root      uint32              // the root of the newest version this instance was given
	current   uint32
	effective uint32
	callOwner *Filter // the stream whose driver makes the current call (nil: background)
	inCall    bool

	// Data available only during one guest call.
	configBuf  []byte
	callResp   *httpCallResult
	redisReply []byte
	status     Status
	statusMsg  string

	nextToken uint32
	callouts  map[uint32]*pendingCallout
	metricIDs map[uint32]*pluginMetric
	nextMetic uint32
	deathErr  error
}

// newInstance instantiates the plugin's module and runs its start function.
func newInstance(ctx context.Context, p *Plugin, id int) (*Instance, error) {
	in := &Instance{plugin: p, id: id, abi: p.module.ABI, contexts: map[uint32]*guestContext{}, roots: map[*version]uint32{},
		callouts: map[uint32]*pendingCallout{}, metricIDs: map[uint32]*pluginMetric{}, stack: make([]uint64, 8)}
	in.logger = p.logger.With("instance", id)
	in.callCtx = context.WithValue(context.Background(), instKey{}, in)
	cfg := wazero.NewModuleConfig().WithName("").
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithStdout(&guestLog{in: in, level: slog.LevelInfo}).
		WithStderr(&guestLog{in: in, level: slog.LevelError})
	for _, kv := range p.env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	if s := p.module.start; s != "" {
		cfg = cfg.WithStartFunctions(s)
	} else {
		cfg = cfg.WithStartFunctions()
	}
	// The start function runs inside InstantiateModule: only logging and WASI
	// are meaningful then; proxy_* calls see no context.
	mod, err := p.module.r.InstantiateModule(in.callCtx, p.module.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in.mod = mod
	in.mem = mod.Memory()
	if in.mem != nil {
		in.memBytes.Store(uint64(in.mem.Size()))
	}
	disp := dispatcher(p.module, mod)
	get := func(name string) *export {
		f := mod.ExportedFunction(name)
		if f == nil {
			return nil
		}
		def := f.Definition()
		e := &export{fn: f, results: len(def.ResultTypes())}
		if k := slices.Index(dispatched, name); disp != nil && k >= 0 && loopguard.Dispatchable(def.ParamTypes(), def.ResultTypes()) {
			e.disp, e.dispCase = disp, uint64(k)
		}
		if p.callObs != nil {
			e.lat = p.callObs(name)
		}
		return e
	}
	in.fnAlloc = mod.ExportedFunction(p.module.allocator)
	in.fnContextCreate = get("proxy_on_context_create")
	in.fnVMStart = get("proxy_on_vm_start")
	in.fnConfigure = get("proxy_on_configure")
	in.fnReqHeaders = get("proxy_on_request_headers")
	in.fnReqBody = get("proxy_on_request_body")
	in.fnReqTrailers = get("proxy_on_request_trailers")
	in.fnRespHeaders = get("proxy_on_response_headers")
	in.fnRespBody = get("proxy_on_response_body")
	in.fnRespTrailers = get("proxy_on_response_trailers")
	in.fnHTTPResp = get("proxy_on_http_call_response")
	in.fnRedisResp = get("proxy_on_redis_call_response")
	in.fnTick = get("proxy_on_tick")
	in.fnQueueReady = get("proxy_on_queue_ready")
	in.fnLog = get("proxy_on_log")
	in.fnDone = get("proxy_on_done")
	in.fnDelete = get("proxy_on_delete")
	in.fnForeign = get("proxy_on_foreign_function")
	if in.fnContextCreate == nil {
		_ = mod.Close(ctx)
		return nil, errors.New("module does not export proxy_on_context_create")
	}
	return in, nil
}

// guestLog routes guest stdout/stderr into the gateway log.
type guestLog struct {
	in    *Instance
	level slog.Level
}

func (g *guestLog) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	if msg != "" {
		g.in.logger.Log(context.Background(), g.level, msg, "stream", map[slog.Level]string{slog.LevelInfo: "stdout", slog.LevelError: "stderr"}[g.level])
	}
	return len(p), nil
}

var _ io.Writer = (*guestLog)(nil)

// export is one callback export of an instance and what calling it needs.
type export struct {
	fn      api.Function
	results int            // number of results
	lat     *callHistogram // nil without metrics
	// disp is the instance's dispatcher when the export is called through
	// it, as case dispCase; nil when it is called directly.
	disp     api.Function
	dispCase uint64
}

// dispatcher returns the instance's dispatcher export: present in a module
// the host rewrote (GuardInstrumented) that exports a dispatched callback.
// All top-level callback calls then go through this one function, so they
// share one wazero call engine and one native stack instead of warming a
// stack per export (docs/RATIONALE.md).
func dispatcher(m *Module, mod api.Module) api.Function {
	if m.Guard != GuardInstrumented {
		return nil
	}
	f := mod.ExportedFunction(loopguard.DispatchExport)
	if f == nil {
		return nil
	}
	if def := f.Definition(); !loopguard.IsDispatcherType(def.ParamTypes(), def.ResultTypes()) {
		return nil
	}
	return f
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow reads the monotonic clock alone (time.Now reads the wall clock
// too): the host times every guest call with it.
func monoNow() time.Duration { return time.Since(monoBase) }

// call runs one top-level guest export for context ctxID. The caller holds
// in.mu. A trap or exit marks the instance dead.
func (in *Instance) call(fn *export, ctxID uint32, args ...uint64) (uint64, error) {
	if fn == nil {
		return 0, nil
	}
	if in.dead.Load() {
		return 0, errInstanceDead
	}
	in.current, in.effective = ctxID, ctxID
	nested := in.inCall
	in.inCall = true
	var st []uint64
	callee := fn.fn
	if fn.disp != nil && !nested { // a nested call would reuse the dispatcher's stack
		callee = fn.disp
		st = in.stack[:1+loopguard.DispatchParams]
		st[0] = fn.dispCase
		clear(st[1+copy(st[1:], args):])
	} else {
		st = in.stack[:max(len(args), 1)]
		copy(st, args)
	}
	ctx := in.callCtx
	var cancel context.CancelFunc
	if wd := in.plugin.rt.opts.Watchdog; wd > 0 {
		ctx, cancel = context.WithTimeout(ctx, wd)
	}
	var start time.Duration
	if fn.lat != nil {
		start = monoNow()
	}
	err := callee.CallWithStack(ctx, st)
	if fn.lat != nil {
		fn.lat.observe(monoNow() - start)
	}
	if cancel != nil {
		cancel()
	}
	if in.mem != nil {
		in.memBytes.Store(uint64(in.mem.Size()))
	}
	in.inCall = nested
	in.current, in.effective = 0, 0
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("watchdog: guest call ran longer than %s: %w", in.plugin.rt.opts.Watchdog, err)
		}
		in.markDead(err)
		return 0, err
	}
	if fn.results == 0 {
		return 0, nil
	}
	return st[0], nil
}

// trapInHostcall records a failure of a nested guest call (the allocator).
func (in *Instance) trapInHostcall(err error) { in.markDead(err) }

func (in *Instance) markDead(err error) {
	if in.dead.Swap(true) {
		return
	}
	in.deathErr = err
	in.logger.Error("plugin instance crashed", "error", err)
	in.plugin.onInstanceDeath(in, err)
}

// newContextID allocates a context id (never reused, never 0).
func (in *Instance) newContextID() uint32 {
	in.nextID++
	return in.nextID
}

// startRoot creates, starts and configures a root context for version v
// (at most one per version and instance). On failure the context is removed
// again. The caller holds in.mu.
func (in *Instance) startRoot(v *version) (uint32, error) {
	if id, ok := in.roots[v]; ok {
		return id, nil
	}
	id := in.newContextID()
	gc := &guestContext{id: id, rs: &rootState{config: v.config, ver: v}}
	in.contexts[id] = gc
	in.roots[v] = id
	if err := in.configureRoot(id, v.config); err != nil {
		in.retireRoot(id)
		return 0, err
	}
	return id, nil
}

func (in *Instance) configureRoot(id uint32, config []byte) error {
	if _, err := in.call(in.fnContextCreate, id, uint64(id), 0); err != nil {
		return fmt.Errorf("proxy_on_context_create: %w", err)
	}
	ok, err := in.call(in.fnVMStart, id, uint64(id), 0)
	if err != nil {
		return fmt.Errorf("proxy_on_vm_start: %w", err)
	}
	if in.fnVMStart != nil && uint32(ok) == 0 {
		return errors.New("proxy_on_vm_start returned false")
	}
	in.configBuf = config
	ok, err = in.call(in.fnConfigure, id, uint64(id), uint64(len(config)))
	in.configBuf = nil
	if err != nil {
		return fmt.Errorf("proxy_on_configure: %w", err)
	}
	if in.fnConfigure != nil && uint32(ok) == 0 {
		return errors.New("plugin rejected its configuration (proxy_on_configure returned false; see the plugin's log lines above)")
	}
	return nil
}

// retireRoot ends a root context: stops its tick, then proxy_on_done and
// proxy_on_delete. Later completions for it are dropped. Caller holds in.mu.
func (in *Instance) retireRoot(id uint32) {
	gc := in.contexts[id]
	if gc == nil || gc.rs == nil || gc.rs.deleted {
		return
	}
	if gc.rs.tickStop != nil {
		close(gc.rs.tickStop)
		gc.rs.tickStop = nil
	}
	gc.rs.deleted = true
	if v := gc.rs.ver; v != nil && in.roots[v] == id {
		delete(in.roots, v)
	}
	for tok, c := range in.callouts {
		if c.root == id {
			in.dropCallout(tok, c)
		}
	}
	if !in.dead.Load() {
		if done, err := in.call(in.fnDone, id, uint64(id)); err == nil && (in.fnDone == nil || uint32(done) != 0) {
			_, _ = in.call(in.fnDelete, id, uint64(id))
		}
	}
	delete(in.contexts, id)
}

// attach pins a new stream to the root context of version v, starting and
// configuring that root first when this instance has none (an instance
// created after v was superseded); detach undoes it and retires the root of
// a retired version once its last stream is gone. attach also retires idle
// roots of retired versions that a retirement pass could not see (an
// instance that was being created meanwhile).
func (in *Instance) attach(v *version) (uint32, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for rv, id := range in.roots {
		if rv != v && rv.retired.Load() {
			if gc := in.contexts[id]; gc != nil && gc.rs != nil && gc.rs.streams <= 0 {
				in.retireRoot(id)
			}
		}
	}
	if in.dead.Load() {
		return 0, errInstanceDead
	}
	id, ok := in.roots[v]
	if !ok {
		var err error
		if id, err = in.startRoot(v); err != nil {
			return 0, fmt.Errorf("starting the root context of configuration version %d: %w", v.seq, err)
		}
		in.logger.Info("root context started for an older configuration version", "version", v.seq, "root", id)
	}
	gc := in.contexts[id]
	gc.rs.streams++
	if v.retired.Load() {
		gc.rs.retiring = true
	}
	return id, nil
}

func (in *Instance) detach(root uint32) {
	gc := in.contexts[root]
	if gc == nil || gc.rs == nil {
		return
	}
	gc.rs.streams--
	if gc.rs.retiring && gc.rs.streams <= 0 {
		in.retireRoot(root)
	}
}

// effectiveStream returns the stream the current hostcall acts on, or nil.
// A stream is reachable only from a call made by its own driver, so no two
// goroutines ever touch one stream.
func (in *Instance) effectiveStream() *Filter {
	gc := in.contexts[in.effective]
	if gc == nil || gc.stream == nil || gc.stream != in.callOwner {
		return nil
	}
	return gc.stream
}

// rootOf returns the root context id of the effective context.
func (in *Instance) rootOf() uint32 {
	gc := in.contexts[in.effective]
	if gc == nil {
		return 0
	}
	if gc.root == 0 {
		return gc.id
	}
	return gc.root
}

// close tears the instance down: stops ticks, drops callouts, closes the module.
func (in *Instance) close(ctx context.Context) {
	if in.closed.Swap(true) {
		return
	}
	in.mu.Lock()
	for _, gc := range in.contexts {
		if gc.rs != nil && gc.rs.tickStop != nil {
			close(gc.rs.tickStop)
			gc.rs.tickStop = nil
		}
	}
	for tok, c := range in.callouts {
		in.dropCallout(tok, c)
	}
	in.mu.Unlock()
	_ = in.mod.Close(ctx)
}

// MemoryBytes is the instance's linear memory size after its last guest
// call. Safe without holding mu.
func (in *Instance) MemoryBytes() uint64 { return in.memBytes.Load() }
