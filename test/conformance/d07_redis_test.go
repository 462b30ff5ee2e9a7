package conformance

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicegw/sluice/internal/redisserver"
)

// Checklist D.7: proxy_redis_init accepts cluster names carrying
// ?db=…&buffer_flush_timeout=…&max_buffer_size_before_flush=… (the db is
// honoured, the pipelining knobs accepted); the raw RESP reply is buffer 9
// (REDIS_CALL_RESPONSE) during proxy_on_redis_call_response; a network
// failure or timeout completes with status ≠ 0 and length 0; a -NOAUTH
// reply arrives as a reply (status 0) after which proxy_redis_init with
// the password re-initialises the client; and a redis Cluster served by
// the embedded store works for the raw ABI and for wasm-go's
// RedisClusterClient.
//
// Each test starts its own redis-server on a free port with persistence
// off, never the standing one on 6379.

// d7StartRedis starts a private redis-server (see redisserver.Start).
func d7StartRedis(t *testing.T, extra ...string) string { return redisserver.Start(t, extra...) }

// d7RedisClient is a go-redis client for checking what the server holds.
func d7RedisClient(t *testing.T, addr, password string, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DB: db, Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// d7RedisClusterDoc is a Cluster of type redis on addr; redisOpts is the
// flow-style body of spec.redis ("" for none).
func d7RedisClusterDoc(name, addr, redisOpts string) string {
	r := ""
	if redisOpts != "" {
		r = "\n  redis: {" + redisOpts + "}"
	}
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: %s}
spec:
  type: redis
  endpoints: [{address: %q}]%s
`, name, addr, r)
}

const d7EmbeddedKV = `---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: kv}
spec:
  type: redis
  redis: {embedded: true}
`

// d7RedisCall is one call of a d7RedisChain.
type d7RedisCall struct {
	tag     string   // header suffix: x-<tag>-status, -size, -reply, -buf
	cluster string   // default "kv"
	command []string // the command
	before  []string // raw steps run in the callback before the next call
}

// d7RedisChain renders probe steps that run calls one after another, each
// from the previous one's callback, reporting per call the callback's
// status and response_size, the reply (buffer 9, hex) and
// get_buffer_status of buffer 9, and resume the request from the last
// callback. The steps belong in request_headers with action
// stop_all_watermark.
func d7RedisChain(calls []d7RedisCall) string {
	next := `{"op": "continue_stream", "stream": "request"}`
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		cluster := c.cluster
		if cluster == "" {
			cluster = "kv"
		}
		cmd := make([]string, len(c.command))
		for j, a := range c.command {
			cmd[j] = strconv.Quote(a)
		}
		then := []string{
			fmt.Sprintf(`{"op": "callback_arg", "arg": "status", "to": "header:x-%s-status"}`, c.tag),
			fmt.Sprintf(`{"op": "callback_arg", "arg": "response_size", "to": "header:x-%s-size"}`, c.tag),
			fmt.Sprintf(`{"op": "get_body", "encoding": "hex", "to": "header:x-%s-reply", "status": "header:x-%s-reply-status"}`, c.tag, c.tag),
			fmt.Sprintf(`{"op": "get_buffer_status", "buffer": "redis_call_response", "to": "header:x-%s-buf", "status": "header:x-%s-buf-status"}`, c.tag, c.tag),
		}
		then = append(then, c.before...)
		then = append(then, next)
		next = fmt.Sprintf(`{"op": "redis_call", "cluster": %q, "command": [%s], "status": "header:x-%s-dispatch", "then": [%s]}`,
			cluster, strings.Join(cmd, ", "), c.tag, strings.Join(then, ", "))
	}
	return next
}

// d7RedisProbe is a probe that initialises cluster at configure time (status
// into header x-init) and runs calls per request.
func d7RedisProbe(initCluster, initExtra string, calls []d7RedisCall) string {
	return fmt.Sprintf(`{"on": {
	  "configure": [{"op": "redis_init", "cluster": %q, "timeout_ms": 5000%s, "status": "var:root.init"}],
	  "request_headers": {"steps": [
	    {"op": "get_var", "name": "root.init", "to": "header:x-init"},
	    %s
	  ], "action": "stop_all_watermark"}}}`, initCluster, initExtra, d7RedisChain(calls))
}

// d7RespHex is the hex form of a RESP reply, as the probe reports buffer 9.
func d7RespHex(s string) string { return hex.EncodeToString([]byte(s)) }

// d7CheckHeaders compares upstream request headers with want.
func d7CheckHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			if strings.HasSuffix(k, "-reply") {
				g, _ := hex.DecodeString(got)
				w, _ := hex.DecodeString(v)
				t.Errorf("%s = %q, want %q", k, g, w)
				continue
			}
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestD7RedisClusterNameQuery: a cluster name with ?db=N and Envoy's
// pipelining parameters is accepted by proxy_redis_init; calls naming the
// cluster without the query use that database. A malformed query, an
// unknown cluster and a cluster that is not of type redis are refused with
// BAD_ARGUMENT, as is a call for a cluster never initialised.
func TestD7RedisClusterNameQuery(t *testing.T) {
	addr := d7StartRedis(t)
	_, port, _ := net.SplitHostPort(addr)
	name := "outbound|" + port + "||kv.static"
	up := newUpstream(t)
	cfg := fmt.Sprintf(`{"on": {
	  "configure": [
	    {"op": "redis_init", "cluster": %q, "timeout_ms": 5000, "status": "var:root.init"},
	    {"op": "redis_init", "cluster": "kv?db=x", "status": "var:root.bad_db"},
	    {"op": "redis_init", "cluster": "outbound|6379||nope.static", "status": "var:root.unknown"},
	    {"op": "redis_init", "cluster": "up", "status": "var:root.http"}],
	  "request_headers": {"steps": [
	    {"op": "get_var", "name": "root.init", "to": "header:x-init"},
	    {"op": "get_var", "name": "root.bad_db", "to": "header:x-init-bad-db"},
	    {"op": "get_var", "name": "root.unknown", "to": "header:x-init-unknown"},
	    {"op": "get_var", "name": "root.http", "to": "header:x-init-http"},
	    {"op": "redis_call", "cluster": "other", "command": ["PING"], "status": "header:x-call-uninitialised"},
	    %s
	  ], "action": "stop_all_watermark"}}}`,
		name+"?db=3&buffer_flush_timeout=5&max_buffer_size_before_flush=2048",
		d7RedisChain([]d7RedisCall{{tag: "set", cluster: name, command: []string{"SET", "d7-db", "in-db-3"}}}))
	g := startGateway(t, clusterAndRoute(up)+d7RedisClusterDoc("kv", addr, "")+d7RedisClusterDoc("other", addr, "")+d12ProbeDoc("d7query", cfg, ""))

	resp, body := g.Do("GET", "/query", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	d7CheckHeaders(t, d12LastSeen(t, up).Header, map[string]string{
		"x-init": "0", "x-init-bad-db": "2", "x-init-unknown": "2", "x-init-http": "2",
		"x-call-uninitialised": "2",
		"x-set-dispatch":       "0", "x-set-status": "0", "x-set-reply": d7RespHex("+OK\r\n"),
	})
	ctx := t.Context()
	if v, err := d7RedisClient(t, addr, "", 3).Get(ctx, "d7-db").Result(); err != nil || v != "in-db-3" {
		t.Errorf("db 3 holds d7-db = %q (%v), want %q", v, err, "in-db-3")
	}
	if v, err := d7RedisClient(t, addr, "", 0).Get(ctx, "d7-db").Result(); err != redis.Nil {
		t.Errorf("db 0 holds d7-db = %q (%v), want nothing: ?db=3 was ignored", v, err)
	}
}

// TestD7RedisReplyInBuffer9: every RESP reply type reaches the plugin byte
// for byte as buffer 9, with the callback's response_size and
// get_buffer_status equal to its length and status 0 (a server error reply
// is a reply, not a failure). Outside the callback buffer 9 is not
// available.
func TestD7RedisReplyInBuffer9(t *testing.T) {
	addr := d7StartRedis(t)
	rdb := d7RedisClient(t, addr, "", 0)
	ctx := t.Context()
	if err := rdb.RPush(ctx, "d7-list", "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "d7-str", "x y", 0).Err(); err != nil {
		t.Fatal(err)
	}
	calls := []d7RedisCall{
		{tag: "int", command: []string{"INCR", "d7-counter"}},
		{tag: "simple", command: []string{"PING"}},
		{tag: "bulk", command: []string{"GET", "d7-str"}},
		{tag: "nil", command: []string{"GET", "d7-missing"}},
		{tag: "array", command: []string{"LRANGE", "d7-list", "0", "-1"}},
		{tag: "error", command: []string{"INCR", "d7-list"}},
	}
	replies := map[string]string{
		"int":    ":1\r\n",
		"simple": "+PONG\r\n",
		"bulk":   "$3\r\nx y\r\n",
		"nil":    "$-1\r\n",
		"array":  "*2\r\n$1\r\na\r\n$1\r\nb\r\n",
		"error":  "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
	}
	up := newUpstream(t)
	cfg := d7RedisProbe("kv", "", calls)
	// Buffer 9 outside a Redis callback.
	cfg = strings.Replace(cfg, `{"op": "get_var", "name": "root.init", "to": "header:x-init"},`,
		`{"op": "get_var", "name": "root.init", "to": "header:x-init"},
	    {"op": "get_body", "buffer": "redis_call_response", "status": "header:x-outside-status", "to": "header:x-outside"},`, 1)
	g := startGateway(t, clusterAndRoute(up)+d7RedisClusterDoc("kv", addr, "")+d12ProbeDoc("d7buf", cfg, ""))

	resp, body := g.Do("GET", "/replies", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := d12LastSeen(t, up).Header
	want := map[string]string{"x-init": "0"}
	for tag, reply := range replies {
		n := strconv.Itoa(len(reply))
		want["x-"+tag+"-dispatch"] = "0"
		want["x-"+tag+"-status"] = "0"
		want["x-"+tag+"-size"] = n
		want["x-"+tag+"-reply"] = d7RespHex(reply)
		want["x-"+tag+"-buf"] = n
	}
	d7CheckHeaders(t, h, want)
	if st := h.Get("x-outside-status"); st != "1" {
		t.Errorf("buffer 9 read outside a Redis callback: status %q (value %q), want 1 (NOT_FOUND)", st, h.Get("x-outside"))
	}
}

// TestD7RedisNetworkFailure: when no reply comes — nothing listens, or the
// server accepts but never answers within the init timeout — the callback
// still runs, with status ≠ 0 and response_size 0, and buffer 9 is empty.
func TestD7RedisNetworkFailure(t *testing.T) {
	// A server that accepts and reads but never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	for _, c := range []struct{ name, addr string }{
		{"refused", d6ClosedAddr(t)},
		{"silent", silent.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			cfg := fmt.Sprintf(`{"on": {
			  "configure": [{"op": "redis_init", "cluster": "kv", "timeout_ms": 300, "status": "var:root.init"}],
			  "request_headers": {"steps": [
			    {"op": "get_var", "name": "root.init", "to": "header:x-init"},
			    %s
			  ], "action": "stop_all_watermark"}}}`, d7RedisChain([]d7RedisCall{{tag: "fail", command: []string{"INCR", "d7-fail"}}}))
			g := startGateway(t, clusterAndRoute(up)+d7RedisClusterDoc("kv", c.addr, "")+d12ProbeDoc("d7fail", cfg, ""))
			start := time.Now()
			resp, body := g.Do("GET", "/fail", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			h := d12LastSeen(t, up).Header
			d7CheckHeaders(t, h, map[string]string{"x-init": "0", "x-fail-dispatch": "0", "x-fail-size": "0"})
			if st := h.Get("x-fail-status"); st == "" || st == "0" {
				t.Errorf("callback status %q, want a non-zero network-error status", st)
			}
			if r := h.Get("x-fail-reply"); r != "" {
				t.Errorf("buffer 9 after a failed call holds %q, want nothing", r)
			}
			if c.name == "silent" && time.Since(start) < 300*time.Millisecond {
				t.Errorf("the unanswered call failed after %s, before its 300ms timeout", time.Since(start))
			}
		})
	}
}

// TestD7RedisNOAUTHThenReinit: against a server with a password, a call
// from a client initialised without one gets the server's -NOAUTH error as
// a reply (status 0, bytes in buffer 9); proxy_redis_init again with the
// password, from inside that callback, re-initialises the client and the
// re-sent command succeeds. wasm-go's RedisClusterClient (wasmgo/callout)
// sees the same replies: with no password the NOAUTH error, with a wrong
// one WRONGPASS, with the right one the result.
//
// (wasm-go at the pinned revision re-runs proxy_redis_init only when the
// first init failed, not after a -NOAUTH reply; the raw-ABI probe does the
// re-init a plugin would do.)
func TestD7RedisNOAUTHThenReinit(t *testing.T) {
	const password = "d7-s3cret"
	addr := d7StartRedis(t, "--requirepass", password)
	_, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	up := newUpstream(t)
	probe := d7RedisProbe("kv", "", []d7RedisCall{
		{tag: "first", command: []string{"INCR", "d7-auth"},
			before: []string{fmt.Sprintf(`{"op": "redis_init", "cluster": "kv", "password": %q, "timeout_ms": 5000, "status": "header:x-reinit"}`, password)}},
		{tag: "second", command: []string{"INCR", "d7-auth"}},
	})
	callout := func(key, pw, header string, db int) string {
		return fmt.Sprintf(`{"redis": {"service": {"type": "static", "name": "kv", "port": %d}, "key": %q,
		  "password": %q, "database": %d, "timeout_ms": 5000, "header": %q}}`, pn, key, pw, db, header)
	}
	prio := func(p int) string { return fmt.Sprintf("  priority: %d\n", p) }
	g := startGateway(t, clusterAndRoute(up)+d7RedisClusterDoc("kv", addr, "")+
		d12ProbeDoc("d7auth", probe, prio(50))+
		plugin("d7wg-none", "wasmgo/callout", json.RawMessage(callout("d7-none", "", "x-wg-none", 0)), prio(40))+
		plugin("d7wg-wrong", "wasmgo/callout", json.RawMessage(callout("d7-wrong", "nope", "x-wg-wrong", 0)), prio(30))+
		plugin("d7wg-good", "wasmgo/callout", json.RawMessage(callout("d7-good", password, "x-wg-good", 4)), prio(20)))

	resp, body := g.Do("GET", "/auth", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	d7CheckHeaders(t, d12LastSeen(t, up).Header, map[string]string{
		"x-init":         "0",
		"x-first-status": "0", "x-first-reply": d7RespHex("-NOAUTH Authentication required.\r\n"),
		"x-reinit":        "0",
		"x-second-status": "0", "x-second-reply": d7RespHex(":1\r\n"),
	})
	if got := resp.Header.Get("x-wg-none"); !strings.HasPrefix(got, "redis-error: NOAUTH") {
		t.Errorf("wasm-go without a password: x-wg-none = %q, want the NOAUTH error reply", got)
	}
	if got := resp.Header.Get("x-wg-wrong"); !strings.HasPrefix(got, "redis-error: WRONGPASS") {
		t.Errorf("wasm-go with a wrong password: x-wg-wrong = %q, want the WRONGPASS error reply", got)
	}
	if got := resp.Header.Get("x-wg-good"); got != "1" {
		t.Errorf("wasm-go with the password: x-wg-good = %q, want 1", got)
	}
	ctx := t.Context()
	if v, err := d7RedisClient(t, addr, password, 0).Get(ctx, "d7-auth").Result(); err != nil || v != "1" {
		t.Errorf("d7-auth = %q (%v), want 1: only the re-sent INCR may have run", v, err)
	}
	if v, err := d7RedisClient(t, addr, password, 4).Get(ctx, "d7-good").Result(); err != nil || v != "1" {
		t.Errorf("db 4 holds d7-good = %q (%v), want 1 (wasm-go's ?db=4)", v, err)
	}
}

// TestD7RedisEmbeddedCluster: a Cluster of type redis with
// redis: {embedded: true} is served by the in-process store: raw-ABI calls
// get real RESP replies, ?db=N selects another database of the same store,
// and wasm-go's RedisClusterClient counts across requests.
func TestD7RedisEmbeddedCluster(t *testing.T) {
	up := newUpstream(t)
	db0 := d7RedisProbe("kv", "", []d7RedisCall{
		{tag: "e-incr", command: []string{"INCR", "d7-e"}},
		{tag: "e-get", command: []string{"GET", "d7-e"}},
		{tag: "e-type", command: []string{"LPUSH", "d7-e", "x"}},
	})
	db1 := d7RedisProbe("outbound|6379||kv.static?db=1&buffer_flush_timeout=3&max_buffer_size_before_flush=1024", "", []d7RedisCall{
		{tag: "e1-get", cluster: "outbound|6379||kv.static", command: []string{"GET", "d7-e"}},
	})
	db1 = strings.ReplaceAll(db1, "x-init", "x-init1")
	prio := func(p int) string { return fmt.Sprintf("  priority: %d\n", p) }
	g := startGateway(t, clusterAndRoute(up)+d7EmbeddedKV+
		d12ProbeDoc("d7emb0", db0, prio(50))+
		d12ProbeDoc("d7emb1", db1, prio(40))+
		plugin("d7embwg", "wasmgo/callout", json.RawMessage(`{"redis": {"service": {"type": "static", "name": "kv", "port": 6379},
		  "key": "d7-wg", "timeout_ms": 5000, "header": "x-wg-count"}}`), prio(30)))

	for i := 1; i <= 2; i++ {
		resp, body := g.Do("GET", "/embedded", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
		n := strconv.Itoa(i)
		d7CheckHeaders(t, d12LastSeen(t, up).Header, map[string]string{
			"x-init": "0", "x-init1": "0",
			"x-e-incr-status": "0", "x-e-incr-reply": d7RespHex(":" + n + "\r\n"),
			"x-e-get-status": "0", "x-e-get-reply": d7RespHex("$1\r\n" + n + "\r\n"),
			"x-e-type-status": "0", "x-e-type-reply": d7RespHex("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
			"x-e1-get-status": "0", "x-e1-get-reply": d7RespHex("$-1\r\n"),
		})
		if got := resp.Header.Get("x-wg-count"); got != n {
			t.Errorf("request %d: wasm-go INCR on the embedded store: x-wg-count = %q, want %s", i, got, n)
		}
	}
}
