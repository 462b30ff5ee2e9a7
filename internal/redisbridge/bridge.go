package redisbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/cluster"
)

// Completion status passed to a Call's done callback.
const (
	// StatusOK: the server replied. The reply may be a RESP error such as
	// "-NOAUTH Authentication required."; the guest decides what it means.
	StatusOK = 0
	// StatusNetworkError: no reply. The connection could not be made or
	// broke, the call's timeout or context ended first, or the bridge was
	// closed. The reply is nil. Guests only test status != 0.
	StatusNetworkError = 1
)

const defaultTimeout = time.Second

var (
	// ErrUnknownCluster: the name does not resolve to a cluster of type
	// redis. It is cluster.ErrUnknownCluster, so registry errors match too.
	// The host answers BAD_ARGUMENT.
	ErrUnknownCluster = cluster.ErrUnknownCluster
	// ErrBadArgument: the command is not one RESP array of bulk strings,
	// the cluster name's query is malformed, or done is nil. The host
	// answers BAD_ARGUMENT.
	ErrBadArgument = errors.New("bad argument")
	// ErrNotInitialized: proxy_redis_call named a cluster that
	// proxy_redis_init did not initialise (through this Bridge). The host
	// answers BAD_ARGUMENT.
	ErrNotInitialized = errors.New("redis cluster not initialised")
	// ErrClosed: Init after Close.
	ErrClosed = errors.New("redis bridge closed")
)

// ClusterLookup resolves the cluster names plugins use;
// *cluster.Registry implements it.
type ClusterLookup interface {
	Lookup(name string) (*cluster.Cluster, error)
}

// Options are the Bridge's collaborators and defaults.
type Options struct {
	// Logger receives client lifecycle events and call failures at debug
	// level. Passwords never appear. nil means slog.Default().
	Logger *slog.Logger
	// DefaultTimeout bounds a call when proxy_redis_init passed timeout 0.
	// Default 1s.
	DefaultTimeout time.Duration
}

// Bridge runs plugins' Redis callouts.
//
// A guest first calls Init for a cluster, which binds the cluster's base
// name (the part before '?') to a client and a per-call timeout; Calls
// naming that base name use the binding. Bindings belong to the Bridge
// they were made through: give each plugin its own Session so two plugins
// may use one cluster with different databases or credentials. Clients and
// embedded stores are shared by the root Bridge and all its sessions.
//
// All methods are safe for concurrent use. Close of the root closes
// everything; Close of a session releases only that session's bindings.
type Bridge struct {
	sh   *shared
	reg  ClusterLookup
	root bool

	// Guarded by sh.mu.
	closed   bool
	bindings map[string]*binding
}

// binding is what one Init set up for a base cluster name.
type binding struct {
	client  *client
	timeout time.Duration
}

// shared is the state of a root Bridge and its sessions.
type shared struct {
	log            *slog.Logger
	defaultTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	clients map[clientKey]*client
	stores  map[string]*store // by cluster namespace/name
	calls   sync.WaitGroup    // calls whose done has not returned
}

// New returns a root Bridge resolving cluster names through reg. It
// starts nothing: clients and embedded stores are created by Init, and
// connections by the first call that needs one.
func New(reg ClusterLookup, opts Options) *Bridge {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := opts.DefaultTimeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	sh := &shared{
		log:            log.With("component", "redisbridge"),
		defaultTimeout: timeout,
		clients:        make(map[clientKey]*client),
		stores:         make(map[string]*store),
	}
	return &Bridge{sh: sh, reg: reg, root: true, bindings: make(map[string]*binding)}
}

// Session returns a Bridge with its own, initially empty, bindings that
// shares b's clients and embedded stores. reg resolves its cluster names;
// nil means b's. A host gives each plugin (each configuration generation
// of it) a session, so plugins do not overwrite each other's Init, and
// clients and embedded data outlive configuration reloads.
func (b *Bridge) Session(reg ClusterLookup) *Bridge {
	if reg == nil {
		reg = b.reg
	}
	return &Bridge{sh: b.sh, reg: reg, bindings: make(map[string]*binding)}
}

// Init implements proxy_redis_init: it resolves clusterName (query
// included, see parseTarget), and binds its base name to the client for
// the cluster's endpoints, the database (?db=N, else the cluster's
// redis.db) and the credentials, with timeout bounding each later call
// (0: Options.DefaultTimeout).
//
// Credentials: username and password from the guest when it passes a
// password, else the cluster's redis.username and redis.password. An
// embedded cluster ignores credentials.
//
// Init does no I/O; a wrong password or an unreachable server shows in the
// first call's reply. Calling it again with the same settings keeps the
// client and its connections (wasm-go re-inits after every -NOAUTH reply);
// changed settings switch the binding to another client, and a client no
// binding uses is closed once its calls finish.
//
// Errors wrap ErrUnknownCluster, ErrBadArgument or ErrClosed.
func (b *Bridge) Init(clusterName, username, password string, timeout time.Duration) error {
	t, err := parseTarget(clusterName)
	if err != nil {
		return err
	}
	c, err := b.reg.Lookup(t.base)
	if err != nil {
		return err
	}
	if c.Type() != v1alpha1.ClusterRedis {
		return fmt.Errorf("%w %q: cluster %s is of type %s, not redis", ErrUnknownCluster, clusterName, clusterRef(c), c.Type())
	}
	if timeout <= 0 {
		timeout = b.sh.defaultTimeout
	}
	opts := c.Redis()
	if opts == nil {
		opts = &v1alpha1.RedisOptions{}
	}
	key := clientKey{db: opts.DB}
	if t.hasDB {
		key.db = t.db
	}
	var endpoints []string
	if opts.Embedded {
		key.server, key.embedded = clusterRef(c), true
	} else {
		if c.Spec().TLS != nil {
			return fmt.Errorf("redis init %q: cluster %s sets spec.tls, but TLS towards Redis is not supported yet", clusterName, clusterRef(c))
		}
		for _, ep := range c.Endpoints() {
			endpoints = append(endpoints, ep.Address())
		}
		if len(endpoints) == 0 {
			return fmt.Errorf("redis init %q: cluster %s has no endpoints", clusterName, clusterRef(c))
		}
		key.server = strings.Join(endpoints, ",")
		key.username, key.password = opts.Username, opts.Password
		if password != "" {
			key.username, key.password = username, password
		}
	}
	connect := c.Spec().ConnectTimeout.Duration
	if connect <= 0 {
		connect = defaultConnectTimeout
	}

	sh := b.sh
	sh.mu.Lock()
	if sh.closed || b.closed {
		sh.mu.Unlock()
		return ErrClosed
	}
	old := b.bindings[t.base]
	if old != nil && old.client.key == key {
		old.timeout = timeout
		sh.mu.Unlock()
		return nil
	}
	cl, err := sh.clientLocked(key, endpoints, connect)
	if err != nil {
		sh.mu.Unlock()
		return fmt.Errorf("redis init %q: start embedded store: %w", clusterName, err)
	}
	cl.refs++
	b.bindings[t.base] = &binding{client: cl, timeout: timeout}
	var retired *client
	if old != nil {
		old.client.refs--
		retired = sh.idleLocked(old.client)
	}
	sh.mu.Unlock()
	sh.retire(retired)
	sh.log.Debug("redis cluster initialised", "cluster", t.base, "server", cl.addr, "db", key.db,
		"username", key.username, "timeout", timeout)
	return nil
}

// clientLocked returns the client for key, creating it (and for an
// embedded cluster its store) if needed. sh.mu is held.
func (sh *shared) clientLocked(key clientKey, endpoints []string, connect time.Duration) (*client, error) {
	if cl := sh.clients[key]; cl != nil {
		return cl, nil
	}
	var cl *client
	if key.embedded {
		s := sh.stores[key.server]
		if s == nil {
			var err error
			if s, err = newStore(); err != nil {
				return nil, err
			}
			sh.stores[key.server] = s
			sh.log.Debug("embedded redis store started", "cluster", key.server)
		}
		cl = newEmbeddedClient(key, s)
	} else {
		cl = newRemoteClient(key, endpoints, connect)
	}
	sh.clients[key] = cl
	return cl, nil
}

// idleLocked removes cl from the pool of clients and returns it when no
// binding uses it and no call is in flight on it; nil otherwise. The
// caller closes the returned client (retire) after releasing sh.mu.
func (sh *shared) idleLocked(cl *client) *client {
	if cl.refs > 0 || cl.busy > 0 || sh.clients[cl.key] != cl {
		return nil
	}
	delete(sh.clients, cl.key)
	return cl
}

func (sh *shared) retire(cl *client) {
	if cl == nil {
		return
	}
	if err := cl.rdb.Close(); err != nil {
		sh.log.Debug("close redis client", "server", cl.addr, "error", err)
	}
}

// Call implements proxy_redis_call: it sends cmd, one RESP array of bulk
// strings exactly as the guest encoded it, to the cluster that clusterName
// (its base name; a query is ignored) was initialised for, and calls done
// exactly once, on another goroutine, with the outcome:
//
//   - StatusOK and the reply, byte for byte as the server sent it: simple
//     string, bulk string, nil bulk ("$-1"), nil array ("*-1"), integer,
//     error, or an array of those, nested to any depth. An error the
//     server returned while the connection was being set up (a wrong
//     password: "-WRONGPASS …") is passed on the same way.
//   - StatusOK and an error reply, without sending, for commands that
//     change connection state (SELECT, AUTH, MULTI, SUBSCRIBE, …), because
//     connections are pooled and shared.
//   - StatusNetworkError and a nil reply when there is no reply: connect
//     failure, broken connection, the Init timeout or ctx ended first, or
//     the Bridge is closed.
//
// cmd is copied; the caller may reuse it when Call returns. ctx bounds the
// call along with the Init timeout. Pass the issuing root context's
// lifetime, not the stream's: a callout issued just before its stream ends
// (ai-cache's final SET) must still complete (spec/host.md §2.7). done must
// not call Close on the root Bridge.
//
// Call returns an error, and never calls done, only when cmd is malformed
// (ErrBadArgument) or clusterName was not initialised (ErrNotInitialized).
func (b *Bridge) Call(ctx context.Context, clusterName string, cmd []byte, done func(status int, reply []byte)) error {
	if done == nil {
		return fmt.Errorf("%w: redis call %q: nil done callback", ErrBadArgument, clusterName)
	}
	buf := append([]byte(nil), cmd...)
	parts, err := parseCommand(buf)
	if err != nil {
		return fmt.Errorf("redis call %q: %w", clusterName, err)
	}
	base := baseName(clusterName)

	sh := b.sh
	sh.mu.Lock()
	if sh.closed || b.closed {
		sh.mu.Unlock()
		go done(StatusNetworkError, nil)
		return nil
	}
	bd := b.bindings[base]
	if bd == nil {
		sh.mu.Unlock()
		return fmt.Errorf("%w: %q (call proxy_redis_init for it first)", ErrNotInitialized, base)
	}
	cl, timeout := bd.client, bd.timeout
	sh.calls.Add(1)
	if reply := refuseReply(parts); reply != nil {
		sh.mu.Unlock()
		go func() {
			defer sh.calls.Done()
			done(StatusOK, reply)
		}()
		return nil
	}
	cl.busy++
	sh.mu.Unlock()

	// go-redis writes a string and a []byte argument alike, as a bulk
	// string; the name goes as a string so go-redis sees the command name.
	args := make([]any, len(parts))
	args[0] = string(parts[0])
	for i, p := range parts[1:] {
		args[i+1] = p
	}
	if ctx == nil {
		ctx = context.Background()
	}
	go sh.run(ctx, cl, timeout, base, args, done)
	return nil
}

// run performs one call. It reads the reply with go-redis's DoRaw, which
// returns the reply's bytes as they came off the wire, so nothing is
// decoded and re-encoded: the RESP type of every element (simple vs bulk
// string, nil bulk vs nil array, nested errors) reaches the guest intact.
// A server error comes back as reply bytes with a nil error; a non-nil
// error is either a Redis error from connection setup (AUTH, SELECT) or a
// failure with no reply.
func (sh *shared) run(ctx context.Context, cl *client, timeout time.Duration, cluster string, args []any, done func(int, []byte)) {
	defer sh.calls.Done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	reply, err := cl.rdb.DoRaw(ctx, args...).Result()
	cancel()

	sh.mu.Lock()
	cl.busy--
	idle := sh.idleLocked(cl)
	sh.mu.Unlock()
	sh.retire(idle)

	status := StatusOK
	var rerr redis.Error
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		reply = []byte("$-1\r\n") // not produced by DoRaw; kept faithful if it ever is
	case errors.As(err, &rerr):
		reply = appendError(nil, rerr.Error())
	default:
		status, reply = StatusNetworkError, nil
		sh.log.Debug("redis call failed", "cluster", cluster, "server", cl.addr, "command", args[0], "error", err)
	}
	done(status, reply)
}

// Close closes the Bridge. On a session it releases the session's
// bindings; clients no other binding uses close once their calls finish.
// On the root it closes every client and embedded store (calls in flight
// end with StatusNetworkError) and returns once every pending done has
// returned. Later Calls complete with StatusNetworkError and later Inits
// fail with ErrClosed. Close is idempotent.
func (b *Bridge) Close() error {
	sh := b.sh
	sh.mu.Lock()
	if !b.root {
		if b.closed {
			sh.mu.Unlock()
			return nil
		}
		b.closed = true
		var idle []*client
		for name, bd := range b.bindings {
			delete(b.bindings, name)
			bd.client.refs--
			if cl := sh.idleLocked(bd.client); cl != nil {
				idle = append(idle, cl)
			}
		}
		sh.mu.Unlock()
		for _, cl := range idle {
			sh.retire(cl)
		}
		return nil
	}
	if sh.closed {
		sh.mu.Unlock()
		sh.calls.Wait()
		return nil
	}
	sh.closed, b.closed = true, true
	clients, stores := sh.clients, sh.stores
	sh.clients, sh.stores = map[clientKey]*client{}, map[string]*store{}
	clear(b.bindings)
	sh.mu.Unlock()

	var errs []error
	for _, cl := range clients {
		if err := cl.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close redis client for %s: %w", cl.addr, err))
		}
	}
	for _, s := range stores {
		s.close()
	}
	sh.calls.Wait()
	return errors.Join(errs...)
}

// Embedded returns the embedded store serving clusterName (a query is
// ignored), for tests and inspection. ok is false when the name does not
// resolve to an embedded cluster, no Init has started its store yet, or
// the Bridge is closed. Reading through the store advances its TTL clock
// like a command does.
func (b *Bridge) Embedded(clusterName string) (m *miniredis.Miniredis, ok bool) {
	c, err := b.reg.Lookup(baseName(clusterName))
	if err != nil || c.Type() != v1alpha1.ClusterRedis || c.Redis() == nil || !c.Redis().Embedded {
		return nil, false
	}
	b.sh.mu.Lock()
	defer b.sh.mu.Unlock()
	s := b.sh.stores[clusterRef(c)]
	if s == nil || b.sh.closed {
		return nil, false
	}
	return s.m, true
}

// clusterRef is "namespace/name" (or the name), the key of a cluster's
// embedded store: stable across configuration reloads.
func clusterRef(c *cluster.Cluster) string {
	if c.Namespace() == "" {
		return c.Name()
	}
	return c.Namespace() + "/" + c.Name()
}
