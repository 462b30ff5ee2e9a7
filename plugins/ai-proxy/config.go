package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/tidwall/gjson"

	"github.com/sluicegw/sluice/pdk"
)

// This file is the plugin configuration: Higress's field names, decoded
// strictly, with every rule laid over the global configuration
// (plugins-C.md §0.1, §6.2, §6.3).

// Defaults of plugins-C.md §6.3.
const (
	defaultTimeoutMs        = 120000
	defaultClaudeVersion    = "2023-06-01"
	defaultFailureThreshold = 3
	defaultSuccessThreshold = 1
	defaultHealthIntervalMs = 5000
	defaultHealthTimeoutMs  = 5000
	defaultMaxRetries       = 1
	defaultRetryTimeoutMs   = 60000
	protocolOpenAI          = "openai"
	protocolOriginal        = "original"
	basePathRemovePrefix    = "removePrefix"
	basePathPrepend         = "prepend"
)

var defaultStatusPatterns = []string{"4.*", "5.*"}

// config is one configuration of the plugin (the global one, or a rule laid
// over it).
type config struct {
	Provider         *providerConfig   `json:"provider"`
	Providers        []*providerConfig `json:"providers"`
	ActiveProviderID string            `json:"activeProviderId"`

	// active is the provider requests use; nil: the plugin passes requests
	// through untouched.
	active *providerConfig
}

// failoverConfig is provider.failover.
type failoverConfig struct {
	Enabled             bool     `json:"enabled"`
	FailureThreshold    int      `json:"failureThreshold"`
	SuccessThreshold    int      `json:"successThreshold"`
	HealthCheckInterval int      `json:"healthCheckInterval"`
	HealthCheckTimeout  int      `json:"healthCheckTimeout"`
	HealthCheckModel    string   `json:"healthCheckModel"`
	FailoverOnStatus    []string `json:"failoverOnStatus"`

	onStatus []*regexp.Regexp
}

// retryConfig is provider.retryOnFailure.
type retryConfig struct {
	Enabled       bool     `json:"enabled"`
	MaxRetries    int      `json:"maxRetries"`
	RetryTimeout  int      `json:"retryTimeout"`
	RetryOnStatus []string `json:"retryOnStatus"`

	onStatus []*regexp.Regexp
}

// providerConfig is one provider object. Fields of Higress's schema that
// this build does not implement are decoded as raw JSON so that setting
// them fails configure with a clear message instead of being ignored.
type providerConfig struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	APITokens        []string          `json:"apiTokens"`
	Timeout          int               `json:"timeout"`
	ModelMapping     map[string]string `json:"modelMapping"`
	Protocol         string            `json:"protocol"`
	BasePath         string            `json:"basePath"`
	BasePathHandling string            `json:"basePathHandling"`
	ProviderBasePath string            `json:"providerBasePath"`
	ProviderDomain   string            `json:"providerDomain"`
	Capabilities     map[string]string `json:"capabilities"`
	Failover         *failoverConfig   `json:"failover"`
	RetryOnFailure   *retryConfig      `json:"retryOnFailure"`

	OpenAICustomURL      string `json:"openaiCustomUrl"`
	AzureServiceURL      string `json:"azureServiceUrl"`
	ClaudeVersion        string `json:"claudeVersion"`
	APIVersion           string `json:"apiVersion"`
	QwenEnableCompatible *bool  `json:"qwenEnableCompatible"`
	QwenDomain           string `json:"qwenDomain"`
	OllamaServerHost     string `json:"ollamaServerHost"`
	OllamaServerPort     int    `json:"ollamaServerPort"`
	CloudflareAccountID  string `json:"cloudflareAccountId"`
	VLLMCustomURL        string `json:"vllmCustomUrl"`
	VLLMServerHost       string `json:"vllmServerHost"`
	DoubaoDomain         string `json:"doubaoDomain"`
	ZhipuDomain          string `json:"zhipuDomain"`
	ZhipuCodePlanMode    bool   `json:"zhipuCodePlanMode"`
	GenericHost          string `json:"genericHost"`
	HunyuanAuthID        string `json:"hunyuanAuthId"`
	HunyuanAuthKey       string `json:"hunyuanAuthKey"`
	MinimaxAPIType       string `json:"minimaxApiType"`

	// Higress fields this build does not implement (see README).
	FirstByteTimeout         json.RawMessage `json:"firstByteTimeout"`
	Context                  json.RawMessage `json:"context"`
	CustomSettings           json.RawMessage `json:"customSettings"`
	ReasoningContentMode     json.RawMessage `json:"reasoningContentMode"`
	ResponseJSONSchema       json.RawMessage `json:"responseJsonSchema"`
	ContextCleanupCommands   json.RawMessage `json:"contextCleanupCommands"`
	MergeConsecutiveMessages json.RawMessage `json:"mergeConsecutiveMessages"`
	PromoteThinkingOnEmpty   json.RawMessage `json:"promoteThinkingOnEmpty"`
	HiclawMode               json.RawMessage `json:"hiclawMode"`
	ClaudeCodeMode           json.RawMessage `json:"claudeCodeMode"`

	// Derived by validate.
	spec    *providerSpec
	mapping *modelMapper
	azure   *azureTarget
	openai  *customURL
	host    string // upstream :authority
	// poolKey names the provider's token state in shared data.
	poolKey string
	// auth holds authHeaders' answer for each of APITokens.
	auth map[string]authFor
}

// parseConfig is the plugin's Parse: raw (the global configuration, or one
// rule's) is laid over the global configuration — a rule overrides the
// global configuration's top-level keys — then decoded strictly.
func parseConfig(raw []byte) (*config, error) { return decodeConfig(overlayGlobal(raw)) }

// decodeConfig decodes and validates one complete configuration.
func decodeConfig(raw []byte) (*config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return nil, err
	}
	if cfg.active != nil && cfg.active.Failover != nil && cfg.active.Failover.Enabled {
		configuring = append(configuring, cfg.active)
	}
	return cfg, nil
}

// overlayGlobal returns the global part of the plugin configuration with
// raw's top-level keys laid over it. Laying the global configuration over
// itself gives it back, so the kit's call for the global part is
// unaffected. Without a readable plugin configuration (a unit test calling
// Parse directly) raw is returned.
func overlayGlobal(raw []byte) []byte {
	full, err := proxywasm.GetPluginConfiguration()
	if err != nil || !gjson.ValidBytes(full) || !gjson.ValidBytes(raw) {
		return raw
	}
	root := gjson.ParseBytes(full)
	over := gjson.ParseBytes(raw)
	if !root.IsObject() || !over.IsObject() {
		return raw
	}
	keys := []string{}
	vals := map[string]string{}
	root.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if name == "_rules_" || name == "_plugin_id_" {
			return true
		}
		keys = append(keys, name)
		vals[name] = v.Raw
		return true
	})
	over.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if _, ok := vals[name]; !ok {
			keys = append(keys, name)
		}
		vals[name] = v.Raw
		return true
	})
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		b.WriteString(vals[k])
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// Validate picks the active provider and checks every provider.
func (c *config) Validate() error {
	var errs pdk.ConfigErrors
	add := func(err error) {
		if err != nil {
			errs = append(errs, pdk.FieldErrors(err)...)
		}
	}
	if c.Provider != nil {
		add(pdk.PrefixErrors("provider", c.Provider.validate()))
		c.active = c.Provider
	} else {
		ids := map[string]int{}
		for i, p := range c.Providers {
			field := fmt.Sprintf("providers[%d]", i)
			if p == nil {
				errs = append(errs, pdk.Errorf(field, "must be an object"))
				continue
			}
			if j, dup := ids[p.ID]; dup {
				errs = append(errs, pdk.Errorf(field+".id", "%q is also the id of providers[%d] (ids must be unique)", p.ID, j))
			}
			ids[p.ID] = i
			add(pdk.PrefixErrors(field, p.validate()))
			if c.ActiveProviderID != "" && p.ID == c.ActiveProviderID {
				c.active = p
			}
		}
		if c.ActiveProviderID != "" && c.active == nil {
			known := make([]string, 0, len(ids))
			for id := range ids {
				known = append(known, fmt.Sprintf("%q", id))
			}
			sort.Strings(known)
			errs = append(errs, pdk.Errorf("activeProviderId", "%q is not the id of any entry of providers (ids: %s)", c.ActiveProviderID, strings.Join(known, ", ")))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (p *providerConfig) validate() error {
	var errs pdk.ConfigErrors
	fail := func(field, format string, args ...any) {
		errs = append(errs, pdk.Errorf(field, format, args...))
	}
	for _, u := range []struct {
		name string
		v    json.RawMessage
	}{
		{"firstByteTimeout", p.FirstByteTimeout}, {"context", p.Context}, {"customSettings", p.CustomSettings},
		{"reasoningContentMode", p.ReasoningContentMode}, {"responseJsonSchema", p.ResponseJSONSchema},
		{"contextCleanupCommands", p.ContextCleanupCommands}, {"mergeConsecutiveMessages", p.MergeConsecutiveMessages},
		{"promoteThinkingOnEmpty", p.PromoteThinkingOnEmpty}, {"hiclawMode", p.HiclawMode}, {"claudeCodeMode", p.ClaudeCodeMode},
	} {
		if len(u.v) > 0 && string(u.v) != "null" {
			fail(u.name, "is not supported by Sluice's ai-proxy yet (remove it; see the plugin README)")
		}
	}

	if p.Type == "" {
		fail("type", "is required (one of %s)", strings.Join(providerTypes(), ", "))
		return errs
	}
	spec, ok := providerTable[p.Type]
	if !ok {
		fail("type", "unknown or unsupported provider type %q (supported: %s)", p.Type, strings.Join(providerTypes(), ", "))
		return errs
	}
	p.spec = spec
	if p.Timeout == 0 {
		p.Timeout = defaultTimeoutMs
	} else if p.Timeout < 0 {
		fail("timeout", "must not be negative")
	}
	switch p.Protocol {
	case "":
		p.Protocol = protocolOpenAI
	case protocolOpenAI, protocolOriginal:
	default:
		fail("protocol", "must be %q or %q, not %q", protocolOpenAI, protocolOriginal, p.Protocol)
	}
	switch p.BasePathHandling {
	case "":
		if p.BasePath != "" {
			p.BasePathHandling = basePathRemovePrefix
		}
	case basePathRemovePrefix, basePathPrepend:
	default:
		fail("basePathHandling", "must be %q or %q, not %q", basePathRemovePrefix, basePathPrepend, p.BasePathHandling)
	}
	if p.BasePath != "" && !strings.HasPrefix(p.BasePath, "/") {
		fail("basePath", "must start with /")
	}
	if p.ProviderBasePath != "" && !strings.HasPrefix(p.ProviderBasePath, "/") {
		fail("providerBasePath", "must start with /")
	}
	for i, t := range p.APITokens {
		if strings.TrimSpace(t) == "" {
			fail(fmt.Sprintf("apiTokens[%d]", i), "must not be empty")
		}
	}
	if spec.needsToken && len(p.APITokens) == 0 {
		fail("apiTokens", "needs at least one token for provider type %q", p.Type)
	}
	if p.ClaudeVersion == "" {
		p.ClaudeVersion = p.APIVersion
	}
	if p.ClaudeVersion == "" {
		p.ClaudeVersion = defaultClaudeVersion
	}
	for k, v := range p.Capabilities {
		if !slices.Contains(capabilityKeys, k) {
			fail("capabilities."+k, "unknown API name (one of %s)", strings.Join(capabilityKeys, ", "))
		} else if !strings.HasPrefix(v, "/") {
			fail("capabilities."+k, "must be a path starting with /")
		}
	}
	m, err := newModelMapper(p.ModelMapping)
	if err != nil {
		errs = append(errs, pdk.FieldErrors(pdk.PrefixErrors("modelMapping", err))...)
	}
	p.mapping = m
	if p.Failover != nil {
		errs = append(errs, pdk.FieldErrors(pdk.PrefixErrors("failover", p.Failover.validate()))...)
		if p.Failover.Enabled && len(p.APITokens) == 0 {
			fail("failover.enabled", "needs apiTokens to rotate")
		}
	}
	if p.RetryOnFailure != nil {
		errs = append(errs, pdk.FieldErrors(pdk.PrefixErrors("retryOnFailure", p.RetryOnFailure.validate()))...)
	}
	p.host = spec.host
	if spec.configure != nil {
		errs = append(errs, pdk.FieldErrors(spec.configure(p))...)
	}
	if p.ProviderDomain != "" {
		p.host = p.ProviderDomain
	}
	p.poolKey = "ai-proxy-" + p.Type + "-" + p.ID
	if len(errs) > 0 {
		return errs
	}
	p.compileAuth()
	return nil
}

func compileStatus(field string, patterns []string) ([]*regexp.Regexp, error) {
	if patterns == nil {
		patterns = defaultStatusPatterns
	}
	var errs pdk.ConfigErrors
	var out []*regexp.Regexp
	for i, s := range patterns {
		re, err := regexp.Compile("^(?:" + s + ")$")
		if err != nil {
			errs = append(errs, pdk.Errorf(fmt.Sprintf("%s[%d]", field, i), "is not a valid regex: %v", err))
			continue
		}
		out = append(out, re)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func (f *failoverConfig) validate() error {
	var errs pdk.ConfigErrors
	defaults := []struct {
		name string
		v    *int
		def  int
	}{
		{"failureThreshold", &f.FailureThreshold, defaultFailureThreshold},
		{"successThreshold", &f.SuccessThreshold, defaultSuccessThreshold},
		{"healthCheckInterval", &f.HealthCheckInterval, defaultHealthIntervalMs},
		{"healthCheckTimeout", &f.HealthCheckTimeout, defaultHealthTimeoutMs},
	}
	for _, d := range defaults {
		if *d.v == 0 {
			*d.v = d.def
		} else if *d.v < 0 {
			errs = append(errs, pdk.Errorf(d.name, "must be positive"))
		}
	}
	if f.Enabled && strings.TrimSpace(f.HealthCheckModel) == "" {
		errs = append(errs, pdk.Errorf("healthCheckModel", "is required when failover is enabled (the model the health check asks)"))
	}
	re, err := compileStatus("failoverOnStatus", f.FailoverOnStatus)
	if err != nil {
		errs = append(errs, pdk.FieldErrors(err)...)
	}
	f.onStatus = re
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (r *retryConfig) validate() error {
	var errs pdk.ConfigErrors
	if r.MaxRetries == 0 {
		r.MaxRetries = defaultMaxRetries
	} else if r.MaxRetries < 0 {
		errs = append(errs, pdk.Errorf("maxRetries", "must be positive"))
	}
	if r.RetryTimeout == 0 {
		r.RetryTimeout = defaultRetryTimeoutMs
	} else if r.RetryTimeout < 0 {
		errs = append(errs, pdk.Errorf("retryTimeout", "must be positive"))
	}
	re, err := compileStatus("retryOnStatus", r.RetryOnStatus)
	if err != nil {
		errs = append(errs, pdk.FieldErrors(err)...)
	}
	r.onStatus = re
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// statusMatches reports whether the decimal status matches one pattern.
func statusMatches(res []*regexp.Regexp, status string) bool {
	for _, re := range res {
		if re.MatchString(status) {
			return true
		}
	}
	return false
}

// splitHostURL splits "host/path" or "scheme://host/path?query" into host,
// path and raw query. A missing scheme is allowed (Higress's
// openaiCustomUrl is written without one).
func splitHostURL(raw string) (host, path, query string, err error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", err
	}
	if u.Host == "" {
		return "", "", "", fmt.Errorf("has no host")
	}
	return u.Host, u.EscapedPath(), u.RawQuery, nil
}
