package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

// These tests decode configurations without a host: the acceptance cases
// of shared/spec/plugins-B.md §2.6 (config_test.go) with Sluice's error
// texts, which name the field, plus the fixes listed in README.md.

const redisJSON = `"redis":{"service_name":"redis.static","service_port":6379}`

func decode(t *testing.T, raw string) (*config, error) {
	t.Helper()
	return pdk.DecodeConfig[config]([]byte(raw))
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want []string // every line must appear in the error
	}{
		{"empty config", `{}`, []string{
			"redis: is required",
			"rule_name: is required",
			"one of global_threshold or rule_items must be set",
		}},
		{"negative global window", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minute":-100}}`,
			[]string{"global_threshold.token_per_minute: must be a positive integer, got -100"}},
		{"zero global window", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_day":0}}`,
			[]string{"global_threshold.token_per_day: must be a positive integer, got 0"}},
		{"global without window", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{}}`,
			[]string{"global_threshold: one of token_per_second, token_per_minute, token_per_hour or token_per_day must be set"}},
		{"several windows (upstream picks one at random)", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minute":1,"token_per_hour":2}}`,
			[]string{"global_threshold: only one of token_per_second, token_per_minute, token_per_hour or token_per_day may be set, found token_per_minute and token_per_hour"}},
		{"negative key window", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_header":"x-test","limit_keys":[{"key":"key1","token_per_minute":-100}]}]}`,
			[]string{"rule_items[0].limit_keys[0].token_per_minute: must be a positive integer, got -100"}},
		{"both global and rule items", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minute":1},"rule_items":[{"limit_by_header":"h","limit_keys":[{"key":"k","token_per_minute":1}]}]}`,
			[]string{"global_threshold and rule_items cannot be set at the same time"}},
		{"neither", `{"rule_name":"r",` + redisJSON + `}`,
			[]string{"one of global_threshold or rule_items must be set"}},
		{"empty rule items", `{"rule_name":"r",` + redisJSON + `,"rule_items":[]}`,
			[]string{"rule_items: must not be empty"}},
		{"no selector", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_keys":[{"key":"k","token_per_minute":1}]}]}`,
			[]string{"rule_items[0]: one of limit_by_header, limit_by_param"}},
		{"two selectors", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_header":"h","limit_by_param":"p","limit_keys":[{"key":"k","token_per_minute":1}]}]}`,
			[]string{"rule_items[0]: only one selector may be set per rule item, found limit_by_header and limit_by_param"}},
		{"empty header name", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_header":"","limit_keys":[{"key":"k","token_per_minute":1}]}]}`,
			[]string{"rule_items[0].limit_by_header: must name the header to limit by"}},
		{"missing limit_keys", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_header":"h"}]}`,
			[]string{"rule_items[0].limit_keys: must have at least one entry"}},
		{"empty key", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_header":"h","limit_keys":[{"key":"","token_per_minute":1}]}]}`,
			[]string{"rule_items[0].limit_keys[0].key: is required"}},
		{"per key neither * nor regexp", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_header":"h","limit_keys":[{"key":"abc","token_per_minute":1}]}]}`,
			[]string{`rule_items[0].limit_keys[0].key: must be "*" or start with "regexp:" for limit_by_per_header, not "abc"`}},
		{"bad regexp", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_param":"p","limit_keys":[{"key":"regexp:(","token_per_minute":1}]}]}`,
			[]string{"rule_items[0].limit_keys[0].key: is not a valid regular expression"}},
		{"per ip empty header", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"from-header-","limit_keys":[{"key":"1.2.3.4","token_per_minute":1}]}]}`,
			[]string{"rule_items[0].limit_by_per_ip: names no header after 'from-header-'"}},
		{"per ip bad source", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"remote","limit_keys":[{"key":"1.2.3.4","token_per_minute":1}]}]}`,
			[]string{`rule_items[0].limit_by_per_ip: must be from-header-<header name> or from-remote-addr, not "remote"`}},
		{"per ip bad cidr", `{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"from-remote-addr","limit_keys":[{"key":"10.0.0.0/99","token_per_minute":1}]}]}`,
			[]string{`rule_items[0].limit_keys[0].key: must be an IP address or a CIDR, not "10.0.0.0/99"`}},
		{"redis without service name", `{"rule_name":"r","redis":{},"global_threshold":{"token_per_minute":1}}`,
			[]string{"redis.service_name: is required"}},
		{"rejected code out of range", `{"rule_name":"r",` + redisJSON + `,"rejected_code":700,"global_threshold":{"token_per_minute":1}}`,
			[]string{"rejected_code: must be an HTTP status from 100 to 599, not 700"}},
		{"unknown field", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minit":1}}`,
			[]string{`global_threshold.token_per_minit: unknown field (did you mean "token_per_minute"?)`}},
		{"wrong type", `{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minute":"many"}}`,
			[]string{"global_threshold.token_per_minute: must be an integer, not a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.raw)
			if err == nil {
				t.Fatalf("accepted; want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigValid(t *testing.T) {
	t.Run("global per second, defaults", func(t *testing.T) {
		c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"global_threshold":{"token_per_second":100}}`)
		if err != nil {
			t.Fatal(err)
		}
		if c.global.limit != (limit{100, 1}) || c.RejectedCode != 429 || c.RejectedMsg != "Too many requests" {
			t.Errorf("global %+v code %d msg %q", c.global.limit, c.RejectedCode, c.RejectedMsg)
		}
		if c.client.Cluster() != "outbound|6379||redis.static" {
			t.Errorf("redis cluster %q", c.client.Cluster())
		}
	})
	for _, tc := range []struct {
		field string
		want  limit
	}{
		{"token_per_second", limit{1000, 1}},
		{"token_per_minute", limit{1000, 60}},
		{"token_per_hour", limit{1000, 3600}},
		{"token_per_day", limit{1000, 86400}},
	} {
		t.Run("global "+tc.field, func(t *testing.T) {
			c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"global_threshold":{"`+tc.field+`":1000}}`)
			if err != nil {
				t.Fatal(err)
			}
			if c.global.limit != tc.want {
				t.Errorf("global %+v, want %+v", c.global.limit, tc.want)
			}
		})
	}
	t.Run("single header rule", func(t *testing.T) {
		c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"rule_items":[{"limit_by_header":"x-test","limit_keys":[{"key":"key1","token_per_second":10}]}]}`)
		if err != nil {
			t.Fatal(err)
		}
		want := []item{{typ: byHeader, name: "x-test", keys: []matcher{{text: "key1", limit: limit{10, 1},
			target: newTarget("higress-token-ratelimit:r:limit_by_header:1:x-test:", limit{10, 1})}}}}
		if !reflect.DeepEqual(c.items, want) {
			t.Errorf("items %+v, want %+v", c.items, want)
		}
	})
	t.Run("param and per-cookie rules", func(t *testing.T) {
		c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"rule_items":[
			{"limit_by_param":"user_id","limit_keys":[{"key":"123","token_per_hour":50}]},
			{"limit_by_per_cookie":"session_id","limit_keys":[{"key":"*","token_per_day":100}]}]}`)
		if err != nil {
			t.Fatal(err)
		}
		want := []item{
			{typ: byParam, name: "user_id", keys: []matcher{{text: "123", limit: limit{50, 3600},
				target: newTarget("higress-token-ratelimit:r:limit_by_param:3600:user_id:", limit{50, 3600})}}},
			{typ: byPerCookie, name: "session_id", perValue: true, keys: []matcher{{text: "*", any: true, limit: limit{100, 86400},
				target: newTarget("higress-token-ratelimit:r:limit_by_per_cookie:86400:session_id:", limit{100, 86400})}}},
		}
		if !reflect.DeepEqual(c.items, want) {
			t.Errorf("items %+v, want %+v", c.items, want)
		}
	})
	t.Run("rejected code and message", func(t *testing.T) {
		c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"rejected_code":403,"rejected_msg":"Forbidden","global_threshold":{"token_per_minute":1}}`)
		if err != nil {
			t.Fatal(err)
		}
		if c.RejectedCode != 403 || c.RejectedMsg != "Forbidden" {
			t.Errorf("code %d msg %q", c.RejectedCode, c.RejectedMsg)
		}
	})
	t.Run("consumer selector takes any value", func(t *testing.T) {
		c, err := decode(t, `{"rule_name":"r",`+redisJSON+`,"rule_items":[{"limit_by_consumer":"","limit_keys":[{"key":"consumer1","token_per_minute":1}]}]}`)
		if err != nil {
			t.Fatal(err)
		}
		if c.items[0].typ != byConsumer || c.items[0].name != consumerHeader {
			t.Errorf("item %+v", c.items[0])
		}
	})
}

// FuzzConfig checks that no configuration makes the decoder panic.
func FuzzConfig(f *testing.F) {
	f.Add(`{"rule_name":"r",` + redisJSON + `,"global_threshold":{"token_per_minute":1}}`)
	f.Add(`{"rule_name":"r",` + redisJSON + `,"rule_items":[{"limit_by_per_ip":"from-header-x","limit_keys":[{"key":"::1/64","token_per_day":3}]}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		_, _ = pdk.DecodeConfig[config]([]byte(raw))
	})
}
