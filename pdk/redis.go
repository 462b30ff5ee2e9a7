package pdk

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
)

// This file is the Redis client: commands to a Redis cluster through the
// host (proxy_redis_init, proxy_redis_call), with wasm-go's semantics
// (plugins-A.md §0.4, plugins-B.md §0.4).

// Errors a Redis callback receives (as error values) for failures on the
// way rather than from Redis.
const (
	RedisErrUnreachable = "cannot connect to redis cluster"
	RedisErrUnreadable  = "cannot read redis response"
)

// RedisConfig is the redis object Higress plugins share (ai-quota,
// ai-token-ratelimit, ai-cache, …):
//
//	{"service_name": "redis.static", "service_port": 6379, "username": "",
//	 "password": "", "timeout": 1000, "database": 0}
type RedisConfig struct {
	// ServiceName is the FQDN with its registry suffix (redis.static,
	// my-redis.dns, redis.ns.svc.cluster.local). Required.
	ServiceName string `json:"service_name"`
	// ServicePort defaults to 80 for .static services (Higress static
	// services listen on 80), else 6379.
	ServicePort int `json:"service_port"`
	// Username and Password authenticate (AUTH); empty for none.
	Username string `json:"username"`
	Password string `json:"password"`
	// Timeout is the per-command timeout in milliseconds; default 1000.
	Timeout int `json:"timeout"`
	// Database is the logical database (SELECT); default 0.
	Database int `json:"database"`
}

// Validate applies the defaults and checks the fields; errors name them
// relative to the redis object (wrap with PrefixErrors("redis", err)).
func (c *RedisConfig) Validate() error {
	var errs ConfigErrors
	if strings.TrimSpace(c.ServiceName) == "" {
		errs = append(errs, Errorf("service_name", "is required (the Redis service's FQDN with its suffix, e.g. redis.static or my-redis.dns)"))
	}
	if c.ServicePort == 0 {
		c.ServicePort = 6379
		if strings.HasSuffix(c.ServiceName, ".static") {
			c.ServicePort = 80
		}
	}
	if c.ServicePort < 1 || c.ServicePort > 65535 {
		errs = append(errs, Errorf("service_port", "must be between 1 and 65535, not %d", c.ServicePort))
	}
	if c.Timeout == 0 {
		c.Timeout = 1000
	}
	if c.Timeout < 0 {
		errs = append(errs, Errorf("timeout", "must be a positive number of milliseconds, not %d", c.Timeout))
	}
	if c.Database < 0 {
		errs = append(errs, Errorf("database", "must not be negative, not %d", c.Database))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// RedisClient sends commands to one Redis cluster. Build it in Parse with
// NewRedisClient and call Init there (wasm-go initialises at configure
// time); an Init failure leaves the client usable: every command first
// retries Init.
type RedisClient struct {
	cluster  string // for proxy_redis_call
	initName string // for proxy_redis_init: cluster plus query
	username string
	password string
	timeout  uint32
	ready    bool
}

// NewRedisClient validates cfg (applying its defaults) and returns a
// client for outbound|<port>||<service_name>. It does not contact the
// host; call Init.
func NewRedisClient(cfg RedisConfig) (*RedisClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cluster := FQDNCluster(cfg.ServiceName, cfg.ServicePort, "").Name
	q := "buffer_flush_timeout=3&max_buffer_size_before_flush=1024"
	if cfg.Database != 0 {
		q = "db=" + strconv.Itoa(cfg.Database) + "&" + q
	}
	return &RedisClient{
		cluster:  cluster,
		initName: cluster + "?" + q,
		username: cfg.Username,
		password: cfg.Password,
		timeout:  uint32(cfg.Timeout),
	}, nil
}

// Cluster returns the cluster name commands go to.
func (c *RedisClient) Cluster() string { return c.cluster }

// Init binds the client with the host (proxy_redis_init). On failure the
// client stays not ready, the error is logged and returned, and the next
// command tries again.
func (c *RedisClient) Init() error {
	err := proxywasm.RedisInit(c.initName, c.username, c.password, c.timeout)
	c.ready = err == nil
	if err != nil {
		Log().Warnf("redis init %s failed (commands will retry it): %v", c.cluster, err)
	}
	return err
}

// Ready reports whether the last Init succeeded.
func (c *RedisClient) Ready() bool { return c.ready }

// Command sends one command (arguments formatted with fmt.Sprint). cb runs
// exactly once with the reply, in the context of the request that sent it;
// failures on the way arrive as error values (RedisErrUnreachable when the
// host reports a failed call, RedisErrUnreadable for a reply that does not
// parse). A -NOAUTH reply makes the client Init again and resend the
// command once. An error return means the command was not sent (the host
// refused it or Init failed again) and cb will not run.
func (c *RedisClient) Command(args []any, cb func(RedisValue)) error {
	if len(args) == 0 {
		return Errorf("", "redis command without arguments")
	}
	return c.Send(EncodeRedisCommand(args...), cb)
}

// Send sends a command already encoded as RESP (built with
// AppendRedisArrayHeader and its siblings, or RedisScript); otherwise it
// is Command. The kit does not check the encoding: a malformed command is
// refused by the host or answered with an error reply. cmd must not be
// changed afterwards (it is resent after a -NOAUTH reply).
func (c *RedisClient) Send(cmd []byte, cb func(RedisValue)) error {
	if len(cmd) == 0 {
		return Errorf("", "redis command without arguments")
	}
	if cb == nil {
		cb = func(RedisValue) {}
	}
	if !c.ready {
		if err := c.Init(); err != nil {
			return err
		}
	}
	return c.dispatch(cmd, cb, false)
}

func (c *RedisClient) dispatch(query []byte, cb func(RedisValue), retried bool) error {
	caller := calloutCaller()
	_, err := proxywasm.DispatchRedisCall(c.cluster, query, func(status, size int) {
		caller.enter()
		defer caller.guard("redis call response")
		v := c.reply(status, size)
		if v.IsError() && strings.HasPrefix(v.str, "NOAUTH") && !retried {
			Log().Warnf("redis %s: %s; initialising again and retrying once", c.cluster, v.str)
			c.ready = false
			if err := c.Init(); err != nil {
				cb(v)
				return
			}
			if err := c.dispatch(query, cb, true); err != nil {
				cb(RedisErrorValue(RedisErrUnreachable))
			}
			return
		}
		cb(v)
	})
	if err != nil {
		Log().Warnf("redis call to %s refused: %v", c.cluster, err)
		return err
	}
	return nil
}

func (c *RedisClient) reply(status, size int) RedisValue {
	if status != 0 {
		Log().Errorf("redis call to %s failed (status %d): %s", c.cluster, status, RedisErrUnreachable)
		return RedisErrorValue(RedisErrUnreachable)
	}
	var raw []byte
	if size > 0 {
		var err error
		if raw, err = proxywasm.GetRedisCallResponse(0, size); err != nil {
			Log().Errorf("redis call to %s: %v", c.cluster, err)
			return RedisErrorValue(RedisErrUnreadable)
		}
	}
	// raw is a buffer the host allocated for this reply alone and nobody
	// writes to, so the reply's strings can share it instead of copying.
	var text string
	if len(raw) > 0 {
		text = unsafe.String(&raw[0], len(raw))
	}
	v, err := parseRedisReply(text)
	if err != nil {
		Log().Errorf("redis call to %s: %v", c.cluster, err)
		return RedisErrorValue(RedisErrUnreadable)
	}
	return v
}

// Eval runs a Lua script: EVAL script numkeys keys… args… (sent as a plain
// command; no EVALSHA caching). A script run per request is cheaper as a
// RedisScript.
func (c *RedisClient) Eval(script string, numKeys int, keys, args []any, cb func(RedisValue)) error {
	cmd := make([]any, 0, 3+len(keys)+len(args))
	cmd = append(cmd, "EVAL", script, numKeys)
	cmd = append(cmd, keys...)
	cmd = append(cmd, args...)
	return c.Command(cmd, cb)
}

// RedisScript is a Lua script prepared for EVAL: the constant start of its
// commands (EVAL, the script, numkeys) is encoded once, by NewRedisScript
// at configure time, and each command appends only its keys and
// arguments. The commands are plain EVALs, byte for byte what Eval sends
// (not EVALSHA: no NOSCRIPT reply to handle on a server that lost or never
// had the script). It is immutable and safe to share.
type RedisScript struct {
	src  string
	head []byte // $4 EVAL, the script and numkeys as bulk strings
}

// NewRedisScript prepares src, which takes numKeys keys.
func NewRedisScript(src string, numKeys int) *RedisScript {
	head := AppendRedisBulkString(make([]byte, 0, len(src)+32), "EVAL")
	head = AppendRedisBulkString(head, src)
	head = AppendRedisBulkInt(head, int64(numKeys))
	return &RedisScript{src: src, head: head}
}

// Source returns the script's Lua source.
func (s *RedisScript) Source() string { return s.src }

// AppendEval appends the start of an EVAL of the script to b: the array
// header of a command with n more elements (the keys, then the
// arguments), EVAL, the script and numkeys. Append the n elements with
// AppendRedisBulkString and AppendRedisBulkInt, then Send.
func (s *RedisScript) AppendEval(b []byte, n int) []byte {
	return append(AppendRedisArrayHeader(b, 3+n), s.head...)
}

// EncodedLen returns the bytes AppendEval appends, for sizing a buffer.
func (s *RedisScript) EncodedLen() int { return len(s.head) + 16 }

// Get sends GET key.
func (c *RedisClient) Get(key string, cb func(RedisValue)) error {
	b := AppendRedisArrayHeader(make([]byte, 0, len(key)+32), 2)
	b = AppendRedisBulkString(b, "GET")
	return c.Send(AppendRedisBulkString(b, key), cb)
}

// Set sends SET key value.
func (c *RedisClient) Set(key string, value any, cb func(RedisValue)) error {
	return c.Command([]any{"SET", key, value}, cb)
}

// SetEx sends SET key value EX ttlSeconds.
func (c *RedisClient) SetEx(key string, value any, ttlSeconds int, cb func(RedisValue)) error {
	return c.Command([]any{"SET", key, value, "EX", ttlSeconds}, cb)
}

// Expire sends EXPIRE key ttlSeconds.
func (c *RedisClient) Expire(key string, ttlSeconds int, cb func(RedisValue)) error {
	return c.Send(keyIntCommand("EXPIRE", key, int64(ttlSeconds)), cb)
}

// IncrBy sends INCRBY key delta.
func (c *RedisClient) IncrBy(key string, delta int64, cb func(RedisValue)) error {
	return c.Send(keyIntCommand("INCRBY", key, delta), cb)
}

// DecrBy sends DECRBY key delta.
func (c *RedisClient) DecrBy(key string, delta int64, cb func(RedisValue)) error {
	return c.Send(keyIntCommand("DECRBY", key, delta), cb)
}

// HIncrBy sends HINCRBY key field delta.
func (c *RedisClient) HIncrBy(key, field string, delta int64, cb func(RedisValue)) error {
	b := AppendRedisArrayHeader(make([]byte, 0, len(key)+len(field)+64), 4)
	b = AppendRedisBulkString(b, "HINCRBY")
	b = AppendRedisBulkString(b, key)
	b = AppendRedisBulkString(b, field)
	return c.Send(AppendRedisBulkInt(b, delta), cb)
}

// Del sends DEL key.
func (c *RedisClient) Del(key string, cb func(RedisValue)) error {
	b := AppendRedisArrayHeader(make([]byte, 0, len(key)+32), 2)
	b = AppendRedisBulkString(b, "DEL")
	return c.Send(AppendRedisBulkString(b, key), cb)
}

// keyIntCommand encodes "name key n".
func keyIntCommand(name, key string, n int64) []byte {
	b := AppendRedisArrayHeader(make([]byte, 0, len(name)+len(key)+56), 3)
	b = AppendRedisBulkString(b, name)
	b = AppendRedisBulkString(b, key)
	return AppendRedisBulkInt(b, n)
}
