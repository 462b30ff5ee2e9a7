package main

import (
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// This file is the configuration: Higress's field names, decoded strictly,
// with the defaults of shared/spec/plugins-B.md §1.2.

// Defaults of the optional fields.
const (
	defaultAdminPath = "/quota"
	defaultKeyPrefix = "chat_quota:"
)

// config is the plugin configuration.
type config struct {
	AdminConsumer  string           `json:"admin_consumer"`
	AdminPath      string           `json:"admin_path"`
	RedisKeyPrefix string           `json:"redis_key_prefix"`
	Redis          *pdk.RedisConfig `json:"redis"`

	client *pdk.RedisClient

	// Built once from AdminPath: the admin endpoints' path suffixes.
	adminQuery, adminRefresh, adminDelta string
	// The constant start of the per-request commands, RESP-encoded.
	getHead, decrByHead []byte
	metrics             pdk.MetricNames
}

// SetDefaults fills the optional fields.
func (c *config) SetDefaults() {
	c.AdminPath = defaultAdminPath
	c.RedisKeyPrefix = defaultKeyPrefix
}

// Validate checks every field, reporting all problems at once, and builds
// the Redis client (initialised by parseConfig).
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	if strings.TrimSpace(c.AdminConsumer) == "" {
		errs = append(errs, pdk.Errorf("admin_consumer", "is required (the consumer allowed to query and change quotas)"))
	}
	if c.AdminPath == "" {
		c.AdminPath = defaultAdminPath
	}
	if !strings.HasPrefix(c.AdminPath, "/") || strings.ContainsAny(c.AdminPath, "?#") || c.AdminPath == "/" {
		errs = append(errs, pdk.Errorf("admin_path", "must be a path suffix starting with '/', without query, such as /quota, not %q", c.AdminPath))
	}
	c.AdminPath = strings.TrimSuffix(c.AdminPath, "/")
	c.adminQuery = chatPath + c.AdminPath
	c.adminRefresh = c.adminQuery + "/refresh"
	c.adminDelta = c.adminQuery + "/delta"
	c.getHead = pdk.AppendRedisBulkString(pdk.AppendRedisArrayHeader(nil, 2), "GET")
	c.decrByHead = pdk.AppendRedisBulkString(pdk.AppendRedisArrayHeader(nil, 3), "DECRBY")
	if c.RedisKeyPrefix == "" {
		c.RedisKeyPrefix = defaultKeyPrefix
	}
	if c.Redis == nil {
		errs = append(errs, pdk.Errorf("redis", `is required (e.g. {"service_name": "redis.static", "service_port": 6379})`))
	} else if client, err := pdk.NewRedisClient(*c.Redis); err != nil {
		errs = append(errs, pdk.FieldErrors(pdk.PrefixErrors("redis", err))...)
	} else {
		c.client = client
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// parseConfig decodes one configuration and initialises its Redis client
// with the host (a failed init is retried by the first command).
func parseConfig(raw []byte) (*config, error) {
	c, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return nil, err
	}
	_ = c.client.Init()
	return c, nil
}
