package redisbridge

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
	"github.com/sluicegw/sluice/internal/cluster"
	"github.com/sluicegw/sluice/internal/redisserver"
)

// waitLimit bounds every wait in these tests; reaching it is a failure,
// never the expected path.
const waitLimit = 10 * time.Second

// startRedis starts a private redis-server (see redisserver.Start).
func startRedis(t *testing.T, extra ...string) string { return redisserver.Start(t, extra...) }

func freePort(t *testing.T) string { return redisserver.FreePort(t) }

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", freePort(t))
}

// remoteCluster is a redis cluster on addrs (host:port).
func remoteCluster(name string, opts *v1alpha1.RedisOptions, addrs ...string) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{
		Metadata: v1alpha1.ObjectMeta{Name: name},
		Spec:     v1alpha1.ClusterSpec{Type: v1alpha1.ClusterRedis, Redis: opts},
	}
	for _, a := range addrs {
		c.Spec.Endpoints = append(c.Spec.Endpoints, v1alpha1.Endpoint{Address: a})
	}
	return c
}

// embeddedCluster is a redis cluster served by the embedded store.
func embeddedCluster(name string, db int) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{
		Metadata: v1alpha1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterSpec{
			Type: v1alpha1.ClusterRedis, Port: 6379,
			Redis: &v1alpha1.RedisOptions{Embedded: true, DB: db},
		},
	}
}

func newRegistry(t *testing.T, clusters ...*v1alpha1.Cluster) *cluster.Registry {
	t.Helper()
	r, err := cluster.NewRegistry(clusters, cluster.Options{})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// newBridge returns a root Bridge closed when the test ends.
func newBridge(t *testing.T, reg ClusterLookup) *Bridge {
	t.Helper()
	b := New(reg, Options{})
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// command encodes args as a RESP array of bulk strings.
func command(args ...string) []byte {
	parts := make([][]byte, len(args))
	for i, a := range args {
		parts[i] = []byte(a)
	}
	return appendCommand(nil, parts...)
}

// appendCommand encodes args as a RESP array of bulk strings, the inverse
// of parseCommand.
func appendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

type outcome struct {
	status int
	reply  []byte
}

// call runs one command and waits for its completion.
func call(t *testing.T, b *Bridge, cluster string, args ...string) outcome {
	t.Helper()
	return callCtx(t, context.Background(), b, cluster, args...)
}

func callCtx(t *testing.T, ctx context.Context, b *Bridge, cluster string, args ...string) outcome {
	t.Helper()
	ch := make(chan outcome, 2)
	err := b.Call(ctx, cluster, command(args...), func(status int, reply []byte) {
		ch <- outcome{status, reply}
	})
	if err != nil {
		t.Fatalf("Call %q %q: %v", cluster, args, err)
	}
	select {
	case o := <-ch:
		return o
	case <-time.After(waitLimit):
		t.Fatalf("Call %q %q: done not called within %v", cluster, args, waitLimit)
		return outcome{}
	}
}

// mustReply runs a command and checks it completes with StatusOK and
// exactly want.
func mustReply(t *testing.T, b *Bridge, cluster, want string, args ...string) {
	t.Helper()
	o := call(t, b, cluster, args...)
	if o.status != StatusOK || string(o.reply) != want {
		t.Fatalf("%q: got status %d reply %q, want status 0 reply %q", args, o.status, o.reply, want)
	}
}

func mustInit(t *testing.T, b *Bridge, name, user, pass string, timeout time.Duration) {
	t.Helper()
	if err := b.Init(name, user, pass, timeout); err != nil {
		t.Fatalf("Init %q: %v", name, err)
	}
}

// backend is a Redis server the bridge is tested against.
type backend struct {
	name    string
	cluster func(t *testing.T, name string, db int) *v1alpha1.Cluster
}

var backends = []backend{
	{"redis-server", func(t *testing.T, name string, db int) *v1alpha1.Cluster {
		return remoteCluster(name, &v1alpha1.RedisOptions{DB: db}, startRedis(t))
	}},
	{"embedded", func(_ *testing.T, name string, db int) *v1alpha1.Cluster {
		return embeddedCluster(name, db)
	}},
}
