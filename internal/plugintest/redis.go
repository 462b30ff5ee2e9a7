package plugintest

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/sluicegw/sluice/internal/redisserver"
)

// RedisBackend is a place a Redis-backed plugin keeps its state in an
// end-to-end test: Cluster returns the Cluster document named redis.static
// (to append to a configuration) and the port its Envoy-style name
// carries (the plugin's redis.service_port).
type RedisBackend struct {
	Name    string
	Cluster func(t *testing.T) (doc string, port int)
}

// RedisBackends are a private redis-server and the gateway's embedded
// store; Redis-backed plugins run their tests on both.
var RedisBackends = []RedisBackend{
	{"redis-server", func(t *testing.T) (string, int) { return RedisCluster(t, redisserver.Start(t)) }},
	{"embedded", func(t *testing.T) (string, int) {
		return `---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: redis.static}
spec:
  type: redis
  redis: {embedded: true}
`, 6379
	}},
}

// RedisCluster is a Cluster of type redis named redis.static for addr
// ("host:port"), and the port.
func RedisCluster(t *testing.T, addr string) (string, int) {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return fmt.Sprintf(`---
apiVersion: sluice.dev/v1alpha1
kind: Cluster
metadata: {name: redis.static}
spec:
  type: redis
  endpoints: [{address: %q}]
`, addr), port
}
