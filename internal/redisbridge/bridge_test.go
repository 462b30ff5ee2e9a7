package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// TestReplies checks that every RESP reply type reaches the guest exactly
// as the server encoded it, against a real server and the embedded store.
func TestReplies(t *testing.T) {
	bin := "a\r\nb\x00c"
	tests := []struct {
		name  string
		setup [][]string
		cmd   []string
		want  string
	}{
		{name: "simple string", cmd: []string{"SET", "k", "v"}, want: "+OK\r\n"},
		{name: "ping", cmd: []string{"PING"}, want: "+PONG\r\n"},
		{name: "bulk string", setup: [][]string{{"SET", "k", "hello"}}, cmd: []string{"GET", "k"}, want: "$5\r\nhello\r\n"},
		{name: "empty bulk string", setup: [][]string{{"SET", "k", ""}}, cmd: []string{"GET", "k"}, want: "$0\r\n\r\n"},
		{name: "binary-safe bulk string", setup: [][]string{{"SET", "k", bin}}, cmd: []string{"GET", "k"}, want: "$6\r\n" + bin + "\r\n"},
		{name: "nil bulk string", cmd: []string{"GET", "missing"}, want: "$-1\r\n"},
		{name: "integer", cmd: []string{"INCR", "n"}, want: ":1\r\n"},
		{name: "negative integer", cmd: []string{"DECRBY", "n", "5"}, want: ":-5\r\n"},
		{name: "error", setup: [][]string{{"SET", "k", "abc"}}, cmd: []string{"INCR", "k"}, want: "-ERR value is not an integer or out of range\r\n"},
		{name: "wrongtype error", setup: [][]string{{"LPUSH", "l", "a"}}, cmd: []string{"GET", "l"}, want: "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
		{name: "empty array", cmd: []string{"LRANGE", "missing", "0", "-1"}, want: "*0\r\n"},
		{name: "array with nil element", setup: [][]string{{"SET", "a", "1"}}, cmd: []string{"MGET", "a", "missing"}, want: "*2\r\n$1\r\n1\r\n$-1\r\n"},
		{name: "nil array", cmd: []string{"BLPOP", "missing", "0.01"}, want: "*-1\r\n"},
		{name: "hash field", setup: [][]string{{"HSET", "h", "f", "v"}}, cmd: []string{"HGET", "h", "f"}, want: "$1\r\nv\r\n"},
		{name: "hash as array", setup: [][]string{{"HSET", "h", "f", "v"}}, cmd: []string{"HGETALL", "h"}, want: "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"},
		{name: "expire", setup: [][]string{{"SET", "k", "v"}}, cmd: []string{"EXPIRE", "k", "100"}, want: ":1\r\n"},
		{name: "expire missing key", cmd: []string{"EXPIRE", "missing", "100"}, want: ":0\r\n"},
		{name: "eval with keys and args", cmd: []string{"EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "c", "5"}, want: ":5\r\n"},
		{name: "eval nested arrays", cmd: []string{"EVAL", "return {1, {'a', {2, {}}}, 'b'}", "0"}, want: "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*2\r\n:2\r\n*0\r\n$1\r\nb\r\n"},
		{name: "eval status reply", cmd: []string{"EVAL", "return redis.status_reply('FINE')", "0"}, want: "+FINE\r\n"},
		{name: "eval error reply", cmd: []string{"EVAL", "return redis.error_reply('MYERR it failed')", "0"}, want: "-MYERR it failed\r\n"},
		{name: "eval nil inside array", cmd: []string{"EVAL", "return {1, false, 'x'}", "0"}, want: "*3\r\n:1\r\n$-1\r\n$1\r\nx\r\n"},
		{name: "eval error inside array", cmd: []string{"EVAL", "return {1, redis.error_reply('INNER bad')}", "0"}, want: "*2\r\n:1\r\n-INNER bad\r\n"},
		{name: "eval nil", cmd: []string{"EVAL", "return nil", "0"}, want: "$-1\r\n"},
		{name: "refused command", cmd: []string{"SELECT", "1"}, want: string(refuseReply([][]byte{[]byte("select")}))},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := newBridge(t, newRegistry(t, be.cluster(t, "cache", 0)))
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					mustInit(t, b, "cache", "", "", 5*time.Second)
					mustReply(t, b, "cache", "+OK\r\n", "FLUSHALL")
					for _, s := range tc.setup {
						if o := call(t, b, "cache", s...); o.status != StatusOK || strings.HasPrefix(string(o.reply), "-") {
							t.Fatalf("setup %q: status %d reply %q", s, o.status, o.reply)
						}
					}
					mustReply(t, b, "cache", tc.want, tc.cmd...)
				})
			}
		})
	}
}

// TestExpireFollowsWallClock: a key with EXPIRE 1 disappears about a
// second later without anyone advancing a clock, on both backends.
func TestExpireFollowsWallClock(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			b := newBridge(t, newRegistry(t, be.cluster(t, "cache", 0)))
			mustInit(t, b, "cache", "", "", 5*time.Second)
			mustReply(t, b, "cache", "+OK\r\n", "SET", "k", "v")
			start := time.Now()
			mustReply(t, b, "cache", ":1\r\n", "EXPIRE", "k", "1")
			mustReply(t, b, "cache", "$1\r\nv\r\n", "GET", "k")
			if o := call(t, b, "cache", "TTL", "k"); string(o.reply) != ":1\r\n" && string(o.reply) != ":0\r\n" {
				t.Fatalf("TTL right after EXPIRE 1: %q", o.reply)
			}
			for {
				o := call(t, b, "cache", "GET", "k")
				if string(o.reply) == "$-1\r\n" {
					break
				}
				if string(o.reply) != "$1\r\nv\r\n" {
					t.Fatalf("GET while waiting for expiry: status %d reply %q", o.status, o.reply)
				}
				if time.Since(start) > waitLimit {
					t.Fatalf("key still present %v after EXPIRE 1", time.Since(start))
				}
				time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
			}
			if gone := time.Since(start); gone < 900*time.Millisecond {
				t.Fatalf("key expired after %v, before its 1s TTL", gone)
			}
		})
	}
}

// TestNoAuth follows wasm-go's re-authentication: a -NOAUTH reply reaches
// the guest with status 0; Init again with credentials, and the re-sent
// command succeeds.
func TestNoAuth(t *testing.T) {
	addr := startRedis(t, "--requirepass", "s3cret")
	reg := newRegistry(t,
		remoteCluster("locked", nil, addr),
		remoteCluster("configured", &v1alpha1.RedisOptions{Password: "s3cret"}, addr),
	)
	b := newBridge(t, reg)

	mustInit(t, b, "locked", "", "", time.Second)
	mustReply(t, b, "locked", "-NOAUTH Authentication required.\r\n", "GET", "k")

	// wasm-go calls proxy_redis_init again (here with the right password)
	// and re-sends the command.
	mustInit(t, b, "locked", "", "s3cret", time.Second)
	mustReply(t, b, "locked", "+OK\r\n", "SET", "k", "v")
	mustReply(t, b, "locked", "$1\r\nv\r\n", "GET", "k")
	b.sh.mu.Lock()
	n := len(b.sh.clients)
	b.sh.mu.Unlock()
	if n != 1 {
		t.Errorf("%d clients after re-init with new credentials, want 1 (the unauthenticated one closed)", n)
	}

	t.Run("wrong password", func(t *testing.T) {
		s := b.Session(nil)
		defer s.Close()
		mustInit(t, s, "locked", "", "wrong", time.Second)
		o := call(t, s, "locked", "GET", "k")
		if o.status != StatusOK || !strings.HasPrefix(string(o.reply), "-WRONGPASS ") || !strings.HasSuffix(string(o.reply), "\r\n") {
			t.Fatalf("got status %d reply %q, want status 0 and a -WRONGPASS error reply", o.status, o.reply)
		}
	})
	t.Run("error during connection setup", func(t *testing.T) {
		// Without credentials, SELECT 1 is refused while the connection is
		// set up; the server's error still reaches the guest as a reply.
		s := b.Session(nil)
		defer s.Close()
		mustInit(t, s, "locked?db=1", "", "", time.Second)
		mustReply(t, s, "locked", "-NOAUTH Authentication required.\r\n", "GET", "k")
	})
	t.Run("credentials from the cluster", func(t *testing.T) {
		s := b.Session(nil)
		defer s.Close()
		mustInit(t, s, "configured", "", "", time.Second)
		mustReply(t, s, "configured", "$1\r\nv\r\n", "GET", "k")
	})
	t.Run("guest credentials win", func(t *testing.T) {
		s := b.Session(nil)
		defer s.Close()
		mustInit(t, s, "configured", "default", "wrong", time.Second)
		if o := call(t, s, "configured", "GET", "k"); !strings.HasPrefix(string(o.reply), "-WRONGPASS ") {
			t.Fatalf("got status %d reply %q, want -WRONGPASS", o.status, o.reply)
		}
	})
}

// TestDatabaseSelection: ?db=N in the Init name selects the database,
// overriding the cluster's redis.db; calls name the cluster without the
// query, as wasm-go does; unknown query keys are ignored.
func TestDatabaseSelection(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.cluster(t, "shared", 3)
			b := newBridge(t, newRegistry(t, c))
			envoyName := fmt.Sprintf("outbound|%d||shared.static", portOf(t, c))

			two, three := b.Session(nil), b.Session(nil)
			mustInit(t, two, envoyName+"?db=2&buffer_flush_timeout=0&max_buffer_size_before_flush=1024&unknown=x", "", "", time.Second)
			mustInit(t, three, "shared", "", "", time.Second)
			mustReply(t, two, envoyName, "+OK\r\n", "SET", "k", "in db 2")
			mustReply(t, three, "shared", "+OK\r\n", "SET", "k", "in db 3")
			mustReply(t, two, envoyName, "$7\r\nin db 2\r\n", "GET", "k")
			mustReply(t, two, envoyName+"?db=9", "$7\r\nin db 2\r\n", "GET", "k") // a query on call is ignored
			mustReply(t, three, "shared", "$7\r\nin db 3\r\n", "GET", "k")

			zero := b.Session(nil)
			mustInit(t, zero, "shared?db=0", "", "", time.Second)
			mustReply(t, zero, "shared", "$-1\r\n", "GET", "k")

			// Seen from outside the bridge.
			for db, want := range map[int]string{2: "in db 2", 3: "in db 3"} {
				if got := readKey(t, b, c, db, "k"); got != want {
					t.Errorf("db %d: k = %q, want %q", db, got, want)
				}
			}

			for _, bad := range []string{"shared?db=x", "shared?db=-1", "shared?db=%zz"} {
				if err := b.Init(bad, "", "", time.Second); !errors.Is(err, ErrBadArgument) {
					t.Errorf("Init(%q) = %v, want ErrBadArgument", bad, err)
				}
			}
		})
	}
}

func portOf(t *testing.T, c *v1alpha1.Cluster) int {
	t.Helper()
	r := newRegistry(t, c)
	return r.All()[0].Port()
}

// readKey reads a key bypassing the bridge: from the embedded store, or
// with a separate go-redis client.
func readKey(t *testing.T, b *Bridge, c *v1alpha1.Cluster, db int, key string) string {
	t.Helper()
	if c.Spec.Redis.Embedded {
		m, ok := b.Embedded(c.Metadata.Name)
		if !ok {
			t.Fatal("embedded store not found")
		}
		v, err := m.DB(db).Get(key)
		if err != nil {
			t.Fatalf("embedded db %d GET %s: %v", db, key, err)
		}
		return v
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.Spec.Endpoints[0].Address, DB: db, Protocol: 2})
	defer rdb.Close()
	v, err := rdb.Get(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("db %d GET %s: %v", db, key, err)
	}
	return v
}

// TestTimeout: a reply slower than the Init timeout completes the call with
// a network-error status and no reply, and the cluster stays usable.
func TestTimeout(t *testing.T) {
	addr := startRedis(t, "--enable-debug-command", "yes")
	b := newBridge(t, newRegistry(t, remoteCluster("slow", nil, addr)))
	mustInit(t, b, "slow", "", "", 100*time.Millisecond)
	o := call(t, b, "slow", "DEBUG", "SLEEP", "1")
	if o.status == StatusOK || o.reply != nil {
		t.Fatalf("DEBUG SLEEP 1 with a 100ms timeout: status %d reply %q, want a failure with no reply", o.status, o.reply)
	}
	mustInit(t, b, "slow", "", "", 5*time.Second)
	mustReply(t, b, "slow", "+PONG\r\n", "PING")

	t.Run("context ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if o := callCtx(t, ctx, b, "slow", "PING"); o.status == StatusOK || o.reply != nil {
			t.Fatalf("cancelled context: status %d reply %q, want a failure", o.status, o.reply)
		}
	})
}

// TestConnectFailure: nothing listening means a failed call, not an error
// reply; a standby endpoint takes over when the first is down.
func TestConnectFailure(t *testing.T) {
	live := startRedis(t)
	dead := deadAddr(t)
	b := newBridge(t, newRegistry(t,
		remoteCluster("down", nil, dead),
		remoteCluster("failover", nil, dead, live),
	))
	mustInit(t, b, "down", "", "", time.Second)
	if o := call(t, b, "down", "GET", "k"); o.status == StatusOK || o.reply != nil {
		t.Fatalf("refused connection: status %d reply %q, want a failure with no reply", o.status, o.reply)
	}
	mustInit(t, b, "failover", "", "", time.Second)
	mustReply(t, b, "failover", "+PONG\r\n", "PING")
}

// TestSynchronousErrors: bad input and unknown or uninitialised clusters
// are reported by Init/Call and never reach done.
func TestSynchronousErrors(t *testing.T) {
	reg := newRegistry(t,
		embeddedCluster("cache", 0),
		&v1alpha1.Cluster{
			Metadata: v1alpha1.ObjectMeta{Name: "llm"},
			Spec:     v1alpha1.ClusterSpec{Endpoints: []v1alpha1.Endpoint{{Address: "127.0.0.1:1"}}},
		},
	)
	b := New(reg, Options{})
	var called atomic.Int32
	done := func(int, []byte) { called.Add(1) }

	for _, name := range []string{"nope", "outbound|6379||nope.static", "llm", "cache:1234"} {
		if err := b.Init(name, "", "", time.Second); !errors.Is(err, ErrUnknownCluster) {
			t.Errorf("Init(%q) = %v, want ErrUnknownCluster", name, err)
		}
	}
	if err := b.Call(context.Background(), "cache", command("PING"), done); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Call before Init = %v, want ErrNotInitialized", err)
	}
	mustInit(t, b, "cache", "", "", time.Second)
	for _, bad := range []string{"", "PING\r\n", "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n"} {
		if err := b.Call(context.Background(), "cache", []byte(bad), done); !errors.Is(err, ErrBadArgument) {
			t.Errorf("Call(%q) = %v, want ErrBadArgument", bad, err)
		}
	}
	if err := b.Call(context.Background(), "cache", command("PING"), nil); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Call with nil done = %v, want ErrBadArgument", err)
	}
	// Close returns after every pending done, so none is still on its way.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := called.Load(); n != 0 {
		t.Fatalf("done called %d times for calls that returned an error", n)
	}
}

// TestDoneRunsOnAnotherGoroutine: Call returns before done runs, so a
// host may hold its own locks across Call.
func TestDoneRunsOnAnotherGoroutine(t *testing.T) {
	b := newBridge(t, newRegistry(t, embeddedCluster("cache", 0)))
	mustInit(t, b, "cache", "", "", time.Second)
	release, finished := make(chan struct{}), make(chan outcome, 1)
	returned := make(chan error, 1)
	go func() {
		returned <- b.Call(context.Background(), "cache", command("PING"), func(status int, reply []byte) {
			<-release
			finished <- outcome{status, reply}
		})
	}()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Call did not return while done was blocked: done ran on the caller's goroutine")
	}
	close(release)
	if o := <-finished; o.status != StatusOK || string(o.reply) != "+PONG\r\n" {
		t.Fatalf("got %d %q", o.status, o.reply)
	}
}

// TestConcurrentCalls hammers one cluster from many goroutines while
// sessions come and go; run with -race.
func TestConcurrentCalls(t *testing.T) {
	const workers, perWorker = 16, 100
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := newBridge(t, newRegistry(t, be.cluster(t, "cache", 0)))
			mustInit(t, b, "cache", "", "", 5*time.Second)
			stop := make(chan struct{})
			var churn sync.WaitGroup
			churn.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					s := b.Session(nil)
					if err := s.Init("cache?db=1", "", "", time.Second); err != nil {
						t.Error(err)
						return
					}
					_ = s.Call(context.Background(), "cache", command("INCR", "churn"), func(int, []byte) {})
					_ = b.Init("cache", "", "", 5*time.Second) // same settings: keeps the client
					s.Close()
				}
			})
			var wg sync.WaitGroup
			var failures atomic.Int32
			for range workers {
				wg.Go(func() {
					results := make(chan outcome, perWorker)
					for range perWorker {
						err := b.Call(context.Background(), "cache", command("INCR", "n"), func(status int, reply []byte) {
							results <- outcome{status, reply}
						})
						if err != nil {
							t.Error(err)
							failures.Add(1)
							return
						}
					}
					for range perWorker {
						o := <-results
						if o.status != StatusOK || o.reply[0] != ':' {
							t.Errorf("INCR: status %d reply %q", o.status, o.reply)
							failures.Add(1)
						}
					}
				})
			}
			wg.Wait()
			close(stop)
			churn.Wait()
			if failures.Load() == 0 {
				mustReply(t, b, "cache", fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(workers*perWorker)), workers*perWorker), "GET", "n")
			}
		})
	}
}

// TestClose: after Close, calls fail with a network status, Init fails,
// the embedded store is gone, and calls in flight were completed before
// Close returned.
func TestClose(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			c := be.cluster(t, "cache", 0)
			b := New(newRegistry(t, c), Options{})
			mustInit(t, b, "cache", "", "", 30*time.Second)
			mustReply(t, b, "cache", "+OK\r\n", "SET", "k", "v")

			var inFlight atomic.Pointer[outcome]
			err := b.Call(context.Background(), "cache", command("BLPOP", "never", "20"), func(status int, reply []byte) {
				inFlight.Store(&outcome{status, reply})
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if o := inFlight.Load(); o == nil {
				t.Fatal("Close returned before the in-flight call's done")
			} else if o.status == StatusOK || o.reply != nil {
				t.Fatalf("in-flight call: status %d reply %q, want a failure", o.status, o.reply)
			}

			if o := call(t, b, "cache", "GET", "k"); o.status == StatusOK || o.reply != nil {
				t.Fatalf("Call after Close: status %d reply %q, want a failure with no reply", o.status, o.reply)
			}
			if err := b.Init("cache", "", "", time.Second); !errors.Is(err, ErrClosed) {
				t.Fatalf("Init after Close = %v, want ErrClosed", err)
			}
			if _, ok := b.Embedded("cache"); ok {
				t.Fatal("Embedded after Close still returns the store")
			}
			if err := b.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

// TestClientSharing: Init with unchanged settings keeps the client, other
// sessions share it, and a client that loses its last binding is closed.
func TestClientSharing(t *testing.T) {
	addr := startRedis(t)
	b := newBridge(t, newRegistry(t, remoteCluster("r", nil, addr), embeddedCluster("e", 0)))
	clientOf := func(s *Bridge, name string) *client {
		s.sh.mu.Lock()
		defer s.sh.mu.Unlock()
		return s.bindings[name].client
	}

	mustInit(t, b, "r", "", "", time.Second)
	first := clientOf(b, "r")
	mustInit(t, b, "r", "", "", 2*time.Second) // wasm-go after -NOAUTH
	if clientOf(b, "r") != first {
		t.Fatal("Init with the same settings replaced the client")
	}
	s := b.Session(nil)
	mustInit(t, s, "outbound|"+addr[strings.LastIndexByte(addr, ':')+1:]+"||r.static", "", "", time.Second)
	if clientOf(s, "outbound|"+addr[strings.LastIndexByte(addr, ':')+1:]+"||r.static") != first {
		t.Fatal("a session with the same settings got its own client")
	}

	mustInit(t, b, "r?db=1", "", "", time.Second)
	if clientOf(b, "r") == first {
		t.Fatal("Init with another database kept the client")
	}
	if err := first.rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("client still bound by the session was closed: %v", err)
	}
	s.Close()
	if err := first.rdb.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("client without bindings: Ping = %v, want redis.ErrClosed", err)
	}

	// The embedded store ignores credentials: one client for all of them.
	mustInit(t, b, "e", "", "", time.Second)
	e := clientOf(b, "e")
	mustInit(t, b, "e", "user", "pw", time.Second)
	if clientOf(b, "e") != e {
		t.Fatal("credentials changed the embedded cluster's client")
	}
	mustReply(t, b, "e", "+PONG\r\n", "PING")
}
