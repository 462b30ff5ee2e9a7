package harness

import (
	"fmt"
	"net"
)

// freeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago. All n listeners are held until every port is picked, so the
// n ports differ; another process may still take one before the target
// binds it, which the caller handles by retrying the start once.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
