package pdk

import "testing"

func TestRedisClusterNames(t *testing.T) {
	cases := []struct {
		cfg               RedisConfig
		cluster, initName string
	}{
		{RedisConfig{ServiceName: "redis.static"}, "outbound|80||redis.static",
			"outbound|80||redis.static?buffer_flush_timeout=3&max_buffer_size_before_flush=1024"},
		{RedisConfig{ServiceName: "redis.dns", ServicePort: 6380, Database: 2}, "outbound|6380||redis.dns",
			"outbound|6380||redis.dns?db=2&buffer_flush_timeout=3&max_buffer_size_before_flush=1024"},
	}
	for _, tc := range cases {
		c, err := NewRedisClient(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Cluster() != tc.cluster || c.initName != tc.initName || c.timeout != 1000 {
			t.Errorf("%+v: cluster %q init %q timeout %d", tc.cfg, c.Cluster(), c.initName, c.timeout)
		}
	}
}
