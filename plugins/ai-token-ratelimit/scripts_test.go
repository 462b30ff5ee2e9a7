package main

import (
	"context"
	"reflect"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/internal/redisserver"
)

// These tests run the two Lua scripts directly on a private redis-server
// and on miniredis (the engine of Sluice's embedded store).

func scriptStores(t *testing.T) map[string]*redis.Client {
	t.Helper()
	m := miniredis.RunT(t)
	out := map[string]*redis.Client{
		"redis-server": redis.NewClient(&redis.Options{Addr: redisserver.Start(t), Protocol: 2}),
		"miniredis":    redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2}),
	}
	for _, c := range out {
		t.Cleanup(func() { _ = c.Close() })
	}
	return out
}

func eval(t *testing.T, c *redis.Client, script, key string, args ...any) []int64 {
	t.Helper()
	v, err := c.Eval(context.Background(), script, []string{key}, args...).Result()
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("reply %#v, want an array", v)
	}
	out := make([]int64, len(arr))
	for i, e := range arr {
		out[i], _ = e.(int64)
	}
	return out
}

func TestScripts(t *testing.T) {
	ctx := context.Background()
	for name, c := range scriptStores(t) {
		t.Run(name, func(t *testing.T) {
			const key = "higress-token-ratelimit:t:global_threshold:60"
			if got := eval(t, c, checkScript, key, 100, 60); !reflect.DeepEqual(got, []int64{100, 0, 60}) {
				t.Errorf("check of a new window = %v, want [100 0 60]", got)
			}
			if n, _ := c.Exists(ctx, key).Result(); n != 0 {
				t.Errorf("the check created the key")
			}
			if got := eval(t, c, chargeScript, key, 100, 60, 30); got[1] != 30 || got[2] < 59 || got[2] > 60 {
				t.Errorf("first charge = %v, want [100 30 ~60]", got)
			}
			if ttl, _ := c.TTL(ctx, key).Result(); ttl <= 0 {
				t.Errorf("window without expiry after the first charge (ttl %v)", ttl)
			}
			if got := eval(t, c, chargeScript, key, 100, 60, 80); got[1] != 110 {
				t.Errorf("second charge = %v, want 110 used (charges past the limit are counted)", got)
			}
			if got := eval(t, c, checkScript, key, 100, 60); got[0] != 100 || got[1] != 110 || got[2] < 1 || got[2] > 60 {
				t.Errorf("check of a used window = %v, want [100 110 1..60]", got)
			}

			// A key that lost its expiry gets one again.
			const bare = "higress-token-ratelimit:t:global_threshold:1"
			c.Set(ctx, bare, 5, 0)
			if got := eval(t, c, checkScript, bare, 10, 1); !reflect.DeepEqual(got, []int64{10, 5, 1}) {
				t.Errorf("check of a key without expiry = %v, want [10 5 1]", got)
			}
			eval(t, c, chargeScript, bare, 10, 1, 1)
			if ttl, _ := c.TTL(ctx, bare).Result(); ttl <= 0 {
				t.Errorf("charge did not repair the expiry (ttl %v)", ttl)
			}
		})
	}
}
