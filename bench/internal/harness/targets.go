package harness

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The built-in targets, in the order each round runs them; the plugin-chain
// targets (Options.Chains) follow them.
const (
	TargetDirect = "direct" // the mock LLM itself
	TargetPlain  = "plain"  // plainproxy in front of the mock
	TargetSluice = "sluice" // sluice without plugins in front of the mock
)

// BaseTargets are the built-in targets in run order.
var BaseTargets = []string{TargetDirect, TargetPlain, TargetSluice}

// targetLabel is a target's column heading: a chain target is called by
// its name.
func targetLabel(t string) string {
	switch t {
	case TargetPlain:
		return "plain proxy"
	default:
		return t
	}
}

// Names of the processes, as used in CPU accounting. A chain target's
// gateway process is named after the target.
const (
	procMock    = "mock"
	procPlain   = "plainproxy"
	procGateway = "sluice"
	procLoadgen = "loadgen"
)

// targetProcess is the process whose CPU a target's load is attributed to.
func targetProcess(t string) string {
	switch t {
	case TargetDirect:
		return procMock
	case TargetPlain:
		return procPlain
	case TargetSluice:
		return procGateway
	default:
		return t
	}
}

// isGateway reports whether target t runs the gateway command: sluice and
// every chain target.
func isGateway(t string) bool { return t != TargetDirect && t != TargetPlain }

// Commands says how to start each target process. A command is split into
// arguments on white space after its placeholders are replaced:
//
//	{sluice}      the sluice binary         {plainproxy}  the plainproxy binary
//	{addr}        the address to listen on  {admin}       the admin address (gateway)
//	{upstream}    the mock's address        {config}      the generated gateway config
//	{mockargs}    the scenario's mock flags
//
// Ready* are URLs (same placeholders) that answer 200 once the process serves.
// GatewayPlugins is a URL answering like Sluice's /config_dump (a "plugins"
// list of name and state), read after a chain target's gateway is ready to
// check that it runs the chain; empty skips the check.
type Commands struct {
	Mock, Plain, Gateway                string
	MockReady, PlainReady, GatewayReady string
	GatewayPlugins                      string
}

// DefaultCommands start the real mock, plainproxy and gateway.
var DefaultCommands = Commands{
	Mock:           "{sluice} mock --listen {addr} {mockargs}",
	Plain:          "{plainproxy} -listen {addr} -upstream http://{upstream}",
	Gateway:        "{sluice} run -c {config}",
	MockReady:      "http://{addr}/healthz",
	PlainReady:     "http://{addr}/healthz",
	GatewayReady:   "http://{admin}/readyz",
	GatewayPlugins: "http://{admin}/config_dump",
}

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

var knownPlaceholders = map[string]bool{
	"{sluice}": true, "{plainproxy}": true, "{addr}": true, "{admin}": true,
	"{upstream}": true, "{config}": true, "{mockargs}": true,
}

// validate reports unknown placeholders and empty commands.
func (c Commands) validate() error {
	var problems []string
	for _, f := range []struct {
		flag, v  string
		optional bool
	}{
		{"-mock-cmd", c.Mock, false}, {"-plain-cmd", c.Plain, false}, {"-gateway-cmd", c.Gateway, false},
		{"-mock-ready", c.MockReady, false}, {"-plain-ready", c.PlainReady, false}, {"-gateway-ready", c.GatewayReady, false},
		{"-gateway-plugins", c.GatewayPlugins, true},
	} {
		if !f.optional && strings.TrimSpace(f.v) == "" {
			problems = append(problems, f.flag+": empty")
		}
		for _, p := range placeholder.FindAllString(f.v, -1) {
			if !knownPlaceholders[p] {
				problems = append(problems, fmt.Sprintf("%s: unknown placeholder %s (known: {sluice} {plainproxy} {addr} {admin} {upstream} {config} {mockargs})", f.flag, p))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// uses reports whether any command needs the named binary placeholder.
func (c Commands) uses(ph string, targets []string) bool {
	cmds := []string{c.Mock}
	if slices.Contains(targets, TargetPlain) {
		cmds = append(cmds, c.Plain)
	}
	if slices.ContainsFunc(targets, isGateway) {
		cmds = append(cmds, c.Gateway)
	}
	for _, s := range cmds {
		if strings.Contains(s, ph) {
			return true
		}
	}
	return false
}

func expand(tmpl string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(tmpl, func(p string) string {
		if v, ok := vars[p[1:len(p)-1]]; ok {
			return v
		}
		return p
	})
}

func expandArgv(tmpl string, vars map[string]string) []string {
	return strings.Fields(expand(tmpl, vars))
}

// targetSet is the running processes of one scenario.
type targetSet struct {
	addr  map[string]string   // target → address the load goes to
	procs map[string]*Process // process name → process
	order []string            // process names in start order
}

func (ts *targetSet) add(target string, p *Process, addr string) {
	name := targetProcess(target)
	ts.procs[name], ts.addr[target] = p, addr
	ts.order = append(ts.order, name)
}

// startTargets starts the mock and, in front of it, whichever of plainproxy
// and the gateways the run needs: one gateway process for sluice and one
// per chain target. Each start is retried once with fresh ports.
func (h *harness) startTargets(ctx context.Context, mockArgs string) (*targetSet, error) {
	ts := &targetSet{addr: map[string]string{}, procs: map[string]*Process{}}
	vars := map[string]string{"sluice": h.sluiceBin, "plainproxy": h.plainBin, "mockargs": mockArgs}

	mock, addrs, err := h.startOne(ctx, procMock, 1, h.opts.StartupTimeout, func(a []string) ([]string, string, error) {
		v := with(vars, "addr", a[0])
		return expandArgv(h.opts.Commands.Mock, v), expand(h.opts.Commands.MockReady, v), nil
	})
	if err != nil {
		return nil, err
	}
	upstream := addrs[0]
	ts.add(TargetDirect, mock, upstream)
	vars["upstream"] = upstream

	for _, t := range h.opts.Targets {
		switch {
		case t == TargetDirect:
		case t == TargetPlain:
			p, addrs, err := h.startOne(ctx, procPlain, 1, h.opts.StartupTimeout, func(a []string) ([]string, string, error) {
				v := with(vars, "addr", a[0])
				return expandArgv(h.opts.Commands.Plain, v), expand(h.opts.Commands.PlainReady, v), nil
			})
			if err != nil {
				return nil, err
			}
			ts.add(t, p, addrs[0])
		default:
			if err := h.startGateway(ctx, ts, t, vars); err != nil {
				return nil, err
			}
		}
	}
	return ts, nil
}

// startGateway starts the gateway of target t (sluice or a chain target)
// with its generated configuration and, for a chain, checks that the
// gateway runs every plugin of it. Chain targets get the longer startup
// timeout: their gateway compiles the plugins before it is ready.
func (h *harness) startGateway(ctx context.Context, ts *targetSet, t string, vars map[string]string) error {
	chain := h.chains[t]
	timeout := h.opts.StartupTimeout
	if len(chain.Plugins) > 0 {
		timeout = max(timeout, h.opts.ChainStartupTimeout)
	}
	p, addrs, err := h.startOne(ctx, targetProcess(t), 2, timeout, func(a []string) ([]string, string, error) {
		cfg, err := writeGatewayConfig(h.tmpDir, t, gatewayConfigData{
			Listen: a[0], Admin: a[1], Upstream: vars["upstream"], Plugins: chain.Plugins,
			Resources: strings.TrimSpace(chain.Resources),
		})
		if err != nil {
			return nil, "", err
		}
		v := with(vars, "addr", a[0], "admin", a[1], "config", cfg)
		return expandArgv(h.opts.Commands.Gateway, v), expand(h.opts.Commands.GatewayReady, v), nil
	})
	if err != nil {
		return err
	}
	ts.add(t, p, addrs[0])
	if len(chain.Plugins) > 0 && h.opts.Commands.GatewayPlugins != "" {
		url := expand(h.opts.Commands.GatewayPlugins, with(vars, "addr", addrs[0], "admin", addrs[1]))
		if err := checkPlugins(ctx, url, chain.Plugins); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return p.failure(err.Error() + "\n  (a chain target needs Sluice as the gateway: -noop-chains '' drops the chain targets, -gateway-plugins '' skips this check)")
		}
	}
	if err := runSetup(ctx, addrs[0], chain.Setup); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return p.failure(err.Error())
	}
	return nil
}

// startOne starts a process on nports fresh ports and waits until it is
// ready, retrying once (a port may have been taken between picking and
// binding it).
func (h *harness) startOne(ctx context.Context, name string, nports int, timeout time.Duration,
	prepare func(addrs []string) (argv []string, readyURL string, err error),
) (*Process, []string, error) {
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		if attempt > 1 {
			h.logf("%s did not start (%s); retrying once with fresh ports", name, firstLineOf(lastErr.Error()))
		}
		addrs, err := freeAddrs(nports)
		if err != nil {
			return nil, nil, err
		}
		argv, ready, err := prepare(addrs)
		if err != nil {
			return nil, nil, err
		}
		p, err := StartProcess(name, argv, h.root)
		if err != nil {
			return nil, nil, err // the binary is missing or not executable: a retry will not help
		}
		h.procs.Add(p)
		err = p.WaitReady(ctx, ready, timeout)
		if err == nil {
			return p, addrs, nil
		}
		p.Stop(stopGrace)
		lastErr = err
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	return nil, nil, lastErr
}

// stop stops the processes, newest first.
func (ts *targetSet) stop() {
	for i := len(ts.order) - 1; i >= 0; i-- {
		ts.procs[ts.order[i]].Stop(stopGrace)
	}
}

// checkAlive reports a target process that has died.
func (ts *targetSet) checkAlive() error {
	for _, name := range ts.order {
		p := ts.procs[name]
		if done, err := p.Exited(); done {
			return p.failure(fmt.Sprintf("exited during the run (%v)", err))
		}
	}
	return nil
}

// cpu returns the CPU time used so far by every process of the set and by
// the load generator. Statistics the platform cannot read are left out.
func (ts *targetSet) cpu() map[string]time.Duration {
	m := map[string]time.Duration{}
	for name, p := range ts.procs {
		if d, err := processCPU(p.Pid()); err == nil {
			m[name] = d
		}
	}
	if d, err := selfCPU(); err == nil {
		m[procLoadgen] = d
	}
	if d, err := machineBusy(); err == nil {
		m[cpuMachine] = d
	}
	return m
}

// CPU accounting keys besides the process names: the whole machine, and
// what is left of it after the harness's own processes ("other": anything
// else running on the box, the noise in the numbers).
const (
	cpuMachine = "machine"
	cpuOther   = "other"
)

const stopGrace = 3 * time.Second

func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
