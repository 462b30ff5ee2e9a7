// Package redisserver starts private redis-server processes for tests: a
// free loopback port, persistence off, files in a temporary directory,
// stopped when the test ends. It never touches a standing server.
//
// It is test support only and must not be imported by production code.
package redisserver

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Start runs a redis-server and returns its "127.0.0.1:port" address.
// extra are more server flags ("--requirepass", "x"). A missing binary
// fails the test (`make deps` installs it); the server's log is shown if
// the test fails.
func Start(t testing.TB, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (%v); `make deps` installs it", err)
	}
	var lastLog string
	for range 5 { // a free port can be taken between probing and binding
		port := FreePort(t)
		args := append([]string{
			"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--daemonize", "no", "--logfile", "",
		}, extra...)
		cmd := exec.Command(bin, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		log := &logBuffer{}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			signalled := false
			for sc.Scan() {
				log.add(sc.Text() + "\n")
				if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					signalled = true
				}
			}
			if !signalled {
				ready <- false
			}
			_, _ = io.Copy(io.Discard, out)
		}()
		var ok bool
		select {
		case ok = <-ready:
		case <-time.After(30 * time.Second):
		}
		if ok {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("--- redis-server :%s log ---\n%s", port, log.String())
				}
			})
			return net.JoinHostPort("127.0.0.1", port)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		lastLog = log.String()
		if !strings.Contains(lastLog, "Address already in use") {
			break
		}
	}
	t.Fatalf("redis-server did not become ready; log:\n%s", lastLog)
	return ""
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
