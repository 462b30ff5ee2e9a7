package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Process is one target process started by the harness. Its stdout and
// stderr are kept (the last tailSize bytes) for error reports. Methods are
// safe for concurrent use.
type Process struct {
	Name string
	Argv []string

	cmd     *exec.Cmd
	output  *tailBuffer
	exited  chan struct{}
	waitErr error // set before exited is closed
	stopped sync.Once
}

// tailSize is how much of a process's output is kept; maxReportLines how
// many of its last lines an error shows.
const (
	tailSize       = 16 << 10
	maxReportLines = 40
)

// StartProcess starts argv as a child in its own process group, so that it
// and anything it spawns can be stopped together; on Linux the child is
// also killed if the harness dies without cleaning up.
func StartProcess(name string, argv []string, dir string) (*Process, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("%s: empty command", name)
	}
	p := &Process{Name: name, Argv: argv, output: &tailBuffer{max: tailSize}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	p.cmd.SysProcAttr = childSysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %q: %w", name, strings.Join(argv, " "), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.exited:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Output returns the tail of the process's stdout and stderr.
func (p *Process) Output() string { return p.output.String() }

// WaitReady polls url until it answers 200, the process exits, timeout
// passes or ctx ends. The error carries the process's output.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	interval := 5 * time.Millisecond
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		t := time.NewTimer(interval)
		select {
		case <-p.exited:
			t.Stop()
			return p.failure(fmt.Sprintf("exited (%v) before %s answered 200", p.waitErr, url))
		case <-ctx.Done():
			t.Stop()
			return p.failure(fmt.Sprintf("not ready: %s did not answer 200 within %v (last: %s)", url, timeout, last))
		case <-t.C:
		}
		interval = min(interval*2, 200*time.Millisecond)
	}
}

// failure builds an error naming the process, the command and its output.
func (p *Process) failure(what string) error {
	return &ProcessError{Name: p.Name, Command: strings.Join(p.Argv, " "), What: what, Output: p.Output()}
}

// ProcessError is a target process that failed to start or died.
type ProcessError struct {
	Name, Command, What, Output string
}

func (e *ProcessError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "target %s: %s\n  command: %s", e.Name, e.What, e.Command)
	out := strings.TrimRight(e.Output, "\n")
	if out == "" {
		b.WriteString("\n  output: (none)")
	} else {
		lines := strings.Split(out, "\n")
		if len(lines) > maxReportLines {
			lines = lines[len(lines)-maxReportLines:]
		}
		b.WriteString("\n  output (last lines):\n")
		for _, l := range lines {
			b.WriteString("    | " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Stop asks the process group to terminate, then kills it if it has not
// exited within grace. Safe to call more than once and after the process
// has exited.
func (p *Process) Stop(grace time.Duration) {
	p.stopped.Do(func() {
		if done, _ := p.Exited(); done {
			return
		}
		signalGroup(p.cmd.Process, false)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			signalGroup(p.cmd.Process, true)
			<-p.exited
		}
	})
}

// Processes is the set of children the harness must stop on the way out.
// Safe for concurrent use.
type Processes struct {
	mu   sync.Mutex
	list []*Process
}

// Add registers p for StopAll.
func (ps *Processes) Add(p *Process) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, p)
}

// StopAll stops every registered process, newest first, and forgets them.
func (ps *Processes) StopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop(3 * time.Second)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}

// errNotSupported marks a process statistic this platform cannot read.
var errNotSupported = errors.New("not supported on this platform")
