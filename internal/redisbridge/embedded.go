package redisbridge

import (
	"net"

	"github.com/alicebob/miniredis/v2"
)

// store is the embedded Redis-compatible server of one cluster.
//
// Clients reach it through miniredis's in-memory pipes (Miniredis.Dial), so
// it listens on no port. Lua (EVAL, EVALSHA, SCRIPT) is miniredis's
// gopher-lua.
//
// Time: miniredis counts TTLs down only when told to. ClockTTL(true) makes
// every command first advance all TTLs by the wall-clock time elapsed since
// the previous command, so EXPIRE, PEXPIRE, SET … EX and TTL behave as on a
// real server, with no ticker goroutine and with expiry exact at the moment
// a key is looked at. (The alternative, a ticker calling FastForward, would
// make expiry lag by up to a tick and cost a goroutine per store.)
type store struct {
	m *miniredis.Miniredis
}

// newStore creates and starts a store.
func newStore() (*store, error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	// The first Dial starts the server; do it now so that inspection
	// (Bridge.Embedded) sees a running store before any call.
	conn, err := m.Dial()
	if err != nil {
		return nil, err
	}
	conn.Close()
	return &store{m: m}, nil
}

func (s *store) dial() (net.Conn, error) { return s.m.Dial() }

func (s *store) close() { s.m.Close() }
