package redisbridge

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// target is a cluster name as a guest passes it to proxy_redis_init:
//
//	outbound|6379||redis.static?db=2&buffer_flush_timeout=3&max_buffer_size_before_flush=1024
//
// base is the part before '?', the name the registry resolves and the key
// of the guest's binding. db is the database the query selects (hasDB
// false: the cluster's configured one). buffer_flush_timeout and
// max_buffer_size_before_flush tune Envoy's pipelining window; go-redis
// pools connections instead, so they and any other key are ignored.
type target struct {
	base  string
	db    int
	hasDB bool
}

func parseTarget(name string) (target, error) {
	base, query, _ := strings.Cut(name, "?")
	t := target{base: base}
	if query == "" {
		return t, nil
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return t, fmt.Errorf("%w: cluster name %q: query: %v", ErrBadArgument, name, err)
	}
	if v, ok := values["db"]; ok {
		db, err := strconv.Atoi(v[len(v)-1])
		if err != nil || db < 0 {
			return t, fmt.Errorf("%w: cluster name %q: db %q is not a non-negative integer", ErrBadArgument, name, v[len(v)-1])
		}
		t.db, t.hasDB = db, true
	}
	return t, nil
}

// baseName is the binding key of a cluster name: the part before '?'.
// proxy_redis_call names the cluster without the query that
// proxy_redis_init carried (wasm-go adds ?db=N to init only), so calls find
// the binding by this key.
func baseName(name string) string {
	base, _, _ := strings.Cut(name, "?")
	return base
}
