package pdk_test

import (
	"fmt"
	"testing"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

type counterConfig struct {
	Redis pdk.RedisConfig `json:"redis"`
	Eval  bool            `json:"eval"`

	client *pdk.RedisClient
}

func (c *counterConfig) Validate() error {
	client, err := pdk.NewRedisClient(c.Redis)
	if err != nil {
		return pdk.PrefixErrors("redis", err)
	}
	_ = client.Init()
	c.client = client
	return nil
}

// counter increments a key per request (or runs a script) and resumes
// from the reply.
var counter = pdk.Plugin[*counterConfig]{
	Name:  "counter",
	Parse: pdk.DecodeConfig[counterConfig],
	OnRequestHeaders: func(ctx *pdk.Context, cfg *counterConfig) pdk.Action {
		cb := func(v pdk.RedisValue) {
			record("reply kind=%c error=%t value=%s", v.Kind(), v.IsError(), v.String())
			_ = ctx.ResumeRequest()
		}
		var err error
		if cfg.Eval {
			err = cfg.client.Eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, []any{"k"}, []any{5}, cb)
		} else {
			err = cfg.client.IncrBy("hits", 1, cb)
		}
		if err != nil {
			record("dispatch error %v", err)
			return pdk.Continue
		}
		return pdk.StopAllWatermark
	},
}

func startCounter(t *testing.T, config string) (*pdktest.Host, uint32) {
	t.Helper()
	events = nil
	h := pdktest.New(t, counter.VMContext(), config)
	if !h.Start() {
		t.Fatalf("configure failed: %q", h.GetErrorLogs())
	}
	id := h.InitializeHttpContext()
	if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), true); a != types.HeaderStopAllIterationAndWatermark {
		t.Fatalf("action %v, events %q", a, events)
	}
	return h, id
}

func onlyRedisCall(t *testing.T, h *pdktest.Host, id uint32) (uint32, string) {
	t.Helper()
	calls := h.GetRedisCalloutAttributesFromContext(id)
	if len(calls) != 1 {
		t.Fatalf("%d redis calls pending, want 1", len(calls))
	}
	if calls[0].Upstream != "outbound|6379||redis.dns" {
		t.Errorf("cluster %q", calls[0].Upstream)
	}
	return calls[0].CalloutID, string(calls[0].Query)
}

func TestRedisCommand(t *testing.T) {
	cases := []struct {
		name   string
		status int32
		reply  string
		want   string
	}{
		{"integer reply", 0, ":7\r\n", "reply kind=: error=false value=7"},
		{"redis error reply", 0, "-ERR wrong type\r\n", "reply kind=- error=true value=ERR wrong type"},
		{"failed call", 1, "", "reply kind=- error=true value=" + pdk.RedisErrUnreachable},
		{"unreadable reply", 0, "garbage", "reply kind=- error=true value=" + pdk.RedisErrUnreadable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, id := startCounter(t, `{"redis":{"service_name":"redis.dns"}}`)
			cid, q := onlyRedisCall(t, h, id)
			if q != "*3\r\n$6\r\nINCRBY\r\n$4\r\nhits\r\n$1\r\n1\r\n" {
				t.Errorf("query %q", q)
			}
			h.CallOnRedisCallResponse(cid, tc.status, []byte(tc.reply))
			wantEvents(t, tc.want)
			if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
				t.Errorf("not resumed: %v", a)
			}
		})
	}
}

func TestRedisEval(t *testing.T) {
	h, id := startCounter(t, `{"redis":{"service_name":"redis.dns"},"eval":true}`)
	cid, q := onlyRedisCall(t, h, id)
	script := "return redis.call('INCRBY', KEYS[1], ARGV[1])"
	want := fmt.Sprintf("*5\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n5\r\n", len(script), script)
	if q != want {
		t.Errorf("query %q\nwant  %q", q, want)
	}
	h.CallOnRedisCallResponse(cid, 0, []byte(":5\r\n"))
	wantEvents(t, "reply kind=: error=false value=5")
}

func TestRedisNoAuthRetriesOnce(t *testing.T) {
	h, id := startCounter(t, `{"redis":{"service_name":"redis.dns","password":"secret"}}`)
	cid, q := onlyRedisCall(t, h, id)
	h.CallOnRedisCallResponse(cid, 0, []byte("-NOAUTH Authentication required.\r\n"))
	wantEvents(t) // the callback waits for the retry
	cid2, q2 := onlyRedisCall(t, h, id)
	if cid2 == cid || q2 != q {
		t.Fatalf("retry %d %q, first %d %q", cid2, q2, cid, q)
	}
	h.CallOnRedisCallResponse(cid2, 0, []byte("-NOAUTH Authentication required.\r\n"))
	wantEvents(t, "reply kind=- error=true value=NOAUTH Authentication required.")
	if calls := h.GetRedisCalloutAttributesFromContext(id); len(calls) != 0 {
		t.Errorf("retried more than once: %d calls pending", len(calls))
	}
}

func TestRedisConfigValidation(t *testing.T) {
	cases := []struct {
		config string
		err    string
	}{
		{`{"redis":{}}`, "redis.service_name: is required (the Redis service's FQDN with its suffix, e.g. redis.static or my-redis.dns)"},
		{`{"redis":{"service_name":"r.dns","service_port":70000,"timeout":-1,"database":-2}}`,
			"redis.service_port: must be between 1 and 65535, not 70000\nredis.timeout: must be a positive number of milliseconds, not -1\nredis.database: must not be negative, not -2"},
		{`{"redis":{"service_name":"r.dns","servce_port":1}}`, `redis.servce_port: unknown field (did you mean "service_port"?)`},
	}
	for _, tc := range cases {
		_, err := pdk.DecodeConfig[counterConfig]([]byte(tc.config))
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s:\n got %v\nwant %s", tc.config, err, tc.err)
		}
	}
	for _, tc := range []struct {
		name string
		port int
	}{{"redis.static", 80}, {"redis.dns", 6379}} {
		c := pdk.RedisConfig{ServiceName: tc.name}
		if err := c.Validate(); err != nil || c.ServicePort != tc.port || c.Timeout != 1000 {
			t.Errorf("%s: defaults %+v, %v", tc.name, c, err)
		}
	}
}
