package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProcessStartsAndStops(t *testing.T) {
	addrs, err := freeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcess("mock", strings.Fields(helperCmd(t, "mock", addrs[0])), "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	if err := p.WaitReady(context.Background(), "http://"+addrs[0]+"/healthz", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.Exited(); done {
		t.Fatal("process exited after becoming ready")
	}
	if _, err := processCPU(p.Pid()); err != nil && !errors.Is(err, errNotSupported) {
		t.Errorf("processCPU: %v", err)
	}
	p.Stop(5 * time.Second)
	if done, _ := p.Exited(); !done {
		t.Error("process still running after Stop")
	}
	p.Stop(time.Second) // a second Stop is harmless
}

func TestProcessThatDiesReportsItsOutput(t *testing.T) {
	p, err := StartProcess("gateway", strings.Fields(helperCmd(t, "crash")), "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	err = p.WaitReady(context.Background(), "http://127.0.0.1:1/readyz", 20*time.Second)
	var pe *ProcessError
	if !errors.As(err, &pe) {
		t.Fatalf("WaitReady: %v, want a *ProcessError", err)
	}
	for _, want := range []string{"target gateway", "exited", "exit status 3", "bad things happened", "crash"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestProcessNotReadyInTime(t *testing.T) {
	addrs, err := freeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcess("mock", strings.Fields(helperCmd(t, "mock", addrs[0])), "")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	// Listening first (a loaded machine may take a while to start it), so
	// the short wait below sees the 404 rather than a refused connection.
	if err := p.WaitReady(context.Background(), "http://"+addrs[0]+"/healthz", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(context.Background(), "http://"+addrs[0]+"/no-such-path", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("WaitReady on a path answering 404: %v, want a not-ready error naming the 404", err)
	}
}

func TestStopKillsAProcessIgnoringSIGTERM(t *testing.T) {
	addrs, err := freeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcess("stubborn", strings.Fields(helperCmd(t, "stubborn", addrs[0])), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(context.Background(), "http://"+addrs[0]+"/healthz", 20*time.Second); err != nil {
		p.Stop(0)
		t.Fatal(err)
	}
	p.Stop(100 * time.Millisecond)
	if done, _ := p.Exited(); !done {
		t.Error("process survived Stop")
	}
}

func TestProcessesStopAll(t *testing.T) {
	var ps Processes
	var list []*Process
	for range 2 {
		addrs, err := freeAddrs(1)
		if err != nil {
			t.Fatal(err)
		}
		p, err := StartProcess("mock", strings.Fields(helperCmd(t, "mock", addrs[0])), "")
		if err != nil {
			t.Fatal(err)
		}
		ps.Add(p)
		list = append(list, p)
	}
	ps.StopAll()
	for _, p := range list {
		if done, _ := p.Exited(); !done {
			t.Errorf("process %d still running after StopAll", p.Pid())
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("0123"))
	if got := tb.String(); got != "0123" {
		t.Errorf("got %q", got)
	}
	tb.Write([]byte("456789ab"))
	if got := tb.String(); got != "…456789ab" {
		t.Errorf("got %q, want the last 8 bytes marked as truncated", got)
	}
}

func TestFreeAddrsAreDistinct(t *testing.T) {
	addrs, err := freeAddrs(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("bad or repeated address %q in %v", a, addrs)
		}
		seen[a] = true
	}
}
