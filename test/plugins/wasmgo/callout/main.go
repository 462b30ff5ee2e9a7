// Command callout is a Higress-style plugin on the wasm-go SDK that exercises
// both callout kinds the AI plugins use. On request headers it:
//
//  1. sends GET <path> to the configured service through
//     wrapper.NewClusterClient (FQDNCluster or StaticIpCluster), and in the
//     callback puts the callout's status code into <status_header> and the
//     gjson path <field> of the callout's JSON body into <field_header>;
//  2. then, if "redis" is configured, runs INCR <key> (or GET with
//     "command": "get") through wrapper.NewRedisClusterClient, initialised at
//     configure time, and remembers the reply;
//  3. resumes the request (it returned HeaderStopAllIterationAndWatermark).
//
// On response headers it adds the Redis reply as <redis.header>.
//
// Configuration (defaults in parentheses):
//
//	{"service": {"type": "fqdn"|"static" (fqdn), "name": "echo.local", "port": 8080,
//	             "host": "" (authority; defaults to the name)},
//	 "path": "/" , "timeout_ms": 500,
//	 "status_header": "x-callout-status", "field": "" , "field_header": "x-callout-field",
//	 "redis": {"service": {"type": ..., "name": "redis.local", "port": 6379},
//	           "key": "callout-hits", "command": "incr"|"get" (incr),
//	           "username": "", "password": "", "timeout_ms": 1000, "database": 0,
//	           "header": "x-redis-count"}}
//
// A failed dispatch writes "dispatch-error" into the status header (or
// "redis-error: …" into the Redis header) and the request continues.
package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/log"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
	"github.com/tidwall/resp"
)

func init() {
	wrapper.SetCtx(
		"callout",
		wrapper.ParseConfig(parseConfig),
		wrapper.ProcessRequestHeaders(onRequestHeaders),
		wrapper.ProcessResponseHeaders(onResponseHeaders),
	)
}

func main() {}

type calloutConfig struct {
	client       wrapper.HttpClient
	path         string
	timeoutMs    uint32
	statusHeader string
	field        string
	fieldHeader  string

	redis       wrapper.RedisClient
	redisKey    string
	redisGet    bool
	redisHeader string
}

const redisReplyKey = "redis-reply"

func cluster(svc gjson.Result, defaultPort int64) (wrapper.Cluster, error) {
	name := svc.Get("name").String()
	if name == "" {
		return nil, errors.New(`service "name" is required`)
	}
	port := svc.Get("port").Int()
	if port == 0 {
		port = defaultPort
	}
	host := svc.Get("host").String()
	switch t := svc.Get("type").String(); t {
	case "", "fqdn":
		return wrapper.FQDNCluster{FQDN: name, Host: host, Port: port}, nil
	case "static":
		return wrapper.StaticIpCluster{ServiceName: name, Host: host, Port: port}, nil
	default:
		return nil, fmt.Errorf(`service "type" %q: want "fqdn" or "static"`, t)
	}
}

func parseConfig(json gjson.Result, cfg *calloutConfig) error {
	cfg.path = "/"
	cfg.timeoutMs = 500
	cfg.statusHeader = "x-callout-status"
	cfg.fieldHeader = "x-callout-field"
	if svc := json.Get("service"); svc.Exists() {
		c, err := cluster(svc, 80)
		if err != nil {
			return err
		}
		cfg.client = wrapper.NewClusterClient(c)
	}
	if v := json.Get("path"); v.Exists() {
		cfg.path = v.String()
	}
	if v := json.Get("timeout_ms"); v.Exists() {
		cfg.timeoutMs = uint32(v.Uint())
	}
	if v := json.Get("status_header"); v.Exists() {
		cfg.statusHeader = v.String()
	}
	cfg.field = json.Get("field").String()
	if v := json.Get("field_header"); v.Exists() {
		cfg.fieldHeader = v.String()
	}

	r := json.Get("redis")
	if !r.Exists() {
		return nil
	}
	c, err := cluster(r.Get("service"), 6379)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	cfg.redisKey = r.Get("key").String()
	if cfg.redisKey == "" {
		cfg.redisKey = "callout-hits"
	}
	switch cmd := r.Get("command").String(); cmd {
	case "", "incr":
	case "get":
		cfg.redisGet = true
	default:
		return fmt.Errorf(`redis "command" %q: want "incr" or "get"`, cmd)
	}
	cfg.redisHeader = r.Get("header").String()
	if cfg.redisHeader == "" {
		cfg.redisHeader = "x-redis-count"
	}
	timeout := r.Get("timeout_ms").Int()
	if timeout == 0 {
		timeout = 1000
	}
	client := wrapper.NewRedisClusterClient(c)
	if err := client.Init(r.Get("username").String(), r.Get("password").String(), timeout,
		wrapper.WithDataBase(int(r.Get("database").Int()))); err != nil {
		return fmt.Errorf("redis init: %w", err)
	}
	cfg.redis = client
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, cfg calloutConfig) types.Action {
	if cfg.client == nil {
		return startRedis(ctx, cfg)
	}
	err := cfg.client.Get(cfg.path, nil, func(status int, _ http.Header, body []byte) {
		setRequestHeader(cfg.statusHeader, strconv.Itoa(status))
		if cfg.field != "" {
			setRequestHeader(cfg.fieldHeader, gjson.GetBytes(body, cfg.field).String())
		}
		if startRedis(ctx, cfg) == types.HeaderContinue {
			resume()
		}
	}, cfg.timeoutMs)
	if err != nil {
		log.Warnf("callout: http call: %v", err)
		setRequestHeader(cfg.statusHeader, "dispatch-error")
		return startRedis(ctx, cfg)
	}
	return types.HeaderStopAllIterationAndWatermark
}

// startRedis issues the Redis command; it returns Continue when there is
// nothing to wait for, and otherwise resumes the request from the callback.
func startRedis(ctx wrapper.HttpContext, cfg calloutConfig) types.Action {
	if cfg.redis == nil {
		return types.HeaderContinue
	}
	done := func(reply resp.Value) {
		if err := reply.Error(); err != nil {
			ctx.SetContext(redisReplyKey, "redis-error: "+err.Error())
		} else {
			ctx.SetContext(redisReplyKey, reply.String())
		}
		resume()
	}
	var err error
	if cfg.redisGet {
		err = cfg.redis.Get(cfg.redisKey, done)
	} else {
		err = cfg.redis.Incr(cfg.redisKey, done)
	}
	if err != nil {
		log.Warnf("callout: redis call: %v", err)
		ctx.SetContext(redisReplyKey, "redis-error: "+err.Error())
		return types.HeaderContinue
	}
	return types.HeaderStopAllIterationAndWatermark
}

func onResponseHeaders(ctx wrapper.HttpContext, cfg calloutConfig) types.Action {
	if v, ok := ctx.GetContext(redisReplyKey).(string); ok {
		if err := proxywasm.AddHttpResponseHeader(cfg.redisHeader, v); err != nil {
			log.Warnf("callout: add response header: %v", err)
		}
	}
	return types.HeaderContinue
}

func setRequestHeader(name, value string) {
	if err := proxywasm.ReplaceHttpRequestHeader(name, value); err != nil {
		log.Warnf("callout: set request header %s: %v", name, err)
	}
}

func resume() {
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		log.Warnf("callout: resume request: %v", err)
	}
}
