package main

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/pdk"
)

// This file is the provider table of plugins-C.md §6.5 for the providers
// this build supports: the OpenAI-compatible family (host, path per API,
// auth style), Azure OpenAI, Anthropic Claude and the generic
// pass-through, and the header transform each applies.

// authStyle is how a provider takes its API token.
type authStyle int

const (
	authBearer authStyle = iota // Authorization: Bearer <token>
	authRaw                     // Authorization: <token>
	authAzure                   // api-key: <token>
	authClaude                  // x-api-key: <token>, anthropic-version
	authNone                    // nothing
)

// family is how a provider's request and response bodies are handled.
type family int

const (
	familyOpenAI  family = iota // OpenAI-compatible: model mapping only
	familyAzure                 // OpenAI-compatible, deployment in the path
	familyClaude                // Anthropic Messages: full translation
	familyGeneric               // pass-through: no path rewrite, no mapping
)

// providerSpec is one row of the provider table.
type providerSpec struct {
	host   string
	family family
	auth   authStyle
	// paths maps an API to the provider's path. openAIPaths: every OpenAI
	// API at OpenAI's path (the openai type).
	paths       map[apiName]string
	openAIPaths bool
	// needsToken: configure fails without apiTokens.
	needsToken bool
	// configure checks provider-specific fields and sets host and paths
	// that depend on them.
	configure func(p *providerConfig) error
}

// v1 maps the given APIs to OpenAI's own paths.
func v1(apis ...apiName) map[apiName]string {
	m := map[apiName]string{}
	for _, a := range apis {
		m[a] = standardPath(a)
	}
	return m
}

// under maps the given APIs to OpenAI's paths with /v1 replaced by prefix.
func under(prefix string, apis ...apiName) map[apiName]string {
	m := map[apiName]string{}
	for _, a := range apis {
		m[a] = prefix + strings.TrimPrefix(standardPath(a), "/v1")
	}
	return m
}

func merge(ms ...map[apiName]string) map[apiName]string {
	out := map[apiName]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// providerTable holds the supported provider types.
var providerTable = map[string]*providerSpec{
	"openai": {host: "api.openai.com", auth: authBearer, openAIPaths: true, configure: configureOpenAI},
	"azure":  {auth: authAzure, family: familyAzure, openAIPaths: true, needsToken: true, configure: configureAzure},
	"claude": {host: "api.anthropic.com", family: familyClaude, auth: authClaude, needsToken: true,
		paths: map[apiName]string{apiChat: "/v1/messages", apiMessages: "/v1/messages", apiComplete: "/v1/complete",
			apiEmbeddings: "/v1/embeddings", apiModels: "/v1/models"}},
	"qwen": {host: "dashscope.aliyuncs.com", auth: authBearer, needsToken: true,
		paths: merge(under("/compatible-mode/v1", apiChat, apiCompletions, apiEmbeddings),
			map[apiName]string{apiMessages: "/apps/anthropic/v1/messages"}),
		configure: configureQwen},
	"moonshot": {host: "api.moonshot.cn", auth: authBearer, needsToken: true, paths: v1(apiChat, apiModels)},
	"deepseek": {host: "api.deepseek.com", auth: authBearer, needsToken: true,
		paths: merge(v1(apiChat, apiModels), map[apiName]string{apiMessages: "/anthropic/v1/messages"})},
	"groq":        {host: "api.groq.com", auth: authBearer, needsToken: true, paths: under("/openai/v1", apiChat, apiResponses)},
	"grok":        {host: "api.x.ai", auth: authBearer, needsToken: true, paths: v1(apiChat)},
	"mistral":     {host: "api.mistral.ai", auth: authBearer, needsToken: true, paths: v1(apiChat, apiEmbeddings)},
	"together-ai": {host: "api.together.xyz", auth: authBearer, needsToken: true, paths: v1(apiChat)},
	"fireworks":   {host: "api.fireworks.ai", auth: authBearer, needsToken: true, paths: under("/inference/v1", apiChat, apiCompletions, apiModels)},
	"openrouter":  {host: "openrouter.ai", auth: authBearer, needsToken: true, paths: under("/api/v1", apiChat, apiCompletions)},
	"vllm": {host: "vllm-service.cluster.local", auth: authBearer,
		paths: v1(apiChat, apiCompletions, apiModels, apiEmbeddings, apiRerank), configure: configureVLLM},
	"ollama": {auth: authNone, paths: v1(apiChat, apiEmbeddings, apiModels), configure: configureOllama},
	"doubao": {host: "ark.cn-beijing.volces.com", auth: authBearer, needsToken: true,
		paths: under("/api/v3", apiChat, apiEmbeddings, apiImageGen, apiResponses), configure: configureDoubao},
	"zhipuai": {host: "open.bigmodel.cn", auth: authBearer, needsToken: true,
		paths: under("/api/paas/v4", apiChat, apiEmbeddings), configure: configureZhipu},
	"baichuan":   {host: "api.baichuan-ai.com", auth: authBearer, needsToken: true, paths: v1(apiChat, apiEmbeddings)},
	"yi":         {host: "api.lingyiwanwu.com", auth: authBearer, needsToken: true, paths: v1(apiChat)},
	"stepfun":    {host: "api.stepfun.com", auth: authBearer, needsToken: true, paths: v1(apiChat)},
	"ai360":      {host: "api.360.cn", auth: authRaw, needsToken: true, paths: v1(apiChat, apiEmbeddings)},
	"github":     {host: "models.inference.ai.azure.com", auth: authRaw, needsToken: true, paths: under("", apiChat, apiEmbeddings)},
	"cloudflare": {host: "api.cloudflare.com", auth: authBearer, needsToken: true, configure: configureCloudflare},
	"baidu":      {host: "qianfan.baidubce.com", auth: authBearer, needsToken: true, paths: under("/v2", apiChat, apiEmbeddings)},
	"hunyuan": {host: "api.hunyuan.cloud.tencent.com", auth: authBearer, needsToken: true,
		paths: v1(apiChat, apiEmbeddings), configure: configureHunyuan},
	"minimax": {host: "api.minimax.chat", auth: authBearer, needsToken: true,
		paths: map[apiName]string{apiChat: "/v1/text/chatcompletion_v2"}, configure: configureMinimax},
	"generic": {family: familyGeneric, auth: authBearer, configure: configureGeneric},
}

// providerTypes lists the supported types, sorted.
func providerTypes() []string {
	out := make([]string, 0, len(providerTable))
	for k := range providerTable {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// customURL is a parsed openaiCustomUrl.
type customURL struct {
	host string
	// verbatimAPI/verbatimPath: the URL's path ends with this API's
	// standard path and is used for it as written.
	verbatimAPI  apiName
	verbatimPath string
	// prefix replaces /v1 for the other APIs.
	prefix string
}

func configureOpenAI(p *providerConfig) error {
	p.host = p.spec.host
	if p.OpenAICustomURL == "" {
		return nil
	}
	host, path, _, err := splitHostURL(p.OpenAICustomURL)
	if err != nil {
		return pdk.Errorf("openaiCustomUrl", "is not a valid URL: %v", err)
	}
	p.host = host
	c := &customURL{host: host, prefix: strings.TrimSuffix(path, "/")}
	for _, s := range standardPaths {
		if strings.HasSuffix(path, s.suffix) && strings.HasPrefix(string(s.api), "openai/") {
			c.verbatimAPI, c.verbatimPath = s.api, path
			c.prefix = strings.TrimSuffix(path, s.suffix) + "/v1"
			break
		}
	}
	p.openai = c
	return nil
}

// azureTarget is a parsed azureServiceUrl.
type azureTarget struct {
	host  string
	query string // with '?'
	// fullPath: every request goes to this path.
	fullPath string
	// deployment: fixed deployment ("" → the mapped model).
	deployment string
}

var azureDeploymentPath = regexp.MustCompile(`^/openai/deployments/([^/]+)/?$`)

func configureAzure(p *providerConfig) error {
	if p.AzureServiceURL == "" {
		return pdk.Errorf("azureServiceUrl", "is required for provider type azure (e.g. https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21)")
	}
	host, path, query, err := splitHostURL(p.AzureServiceURL)
	if err != nil {
		return pdk.Errorf("azureServiceUrl", "is not a valid URL: %v", err)
	}
	if !strings.Contains(query, "api-version=") {
		return pdk.Errorf("azureServiceUrl", "must have an api-version query parameter (…?api-version=2024-10-21)")
	}
	t := &azureTarget{host: host, query: "?" + query}
	switch m := azureDeploymentPath.FindStringSubmatch(path); {
	case path == "" || path == "/":
	case m != nil:
		t.deployment = m[1]
	default:
		t.fullPath = path
	}
	p.azure, p.host = t, host
	return nil
}

func configureQwen(p *providerConfig) error {
	if p.QwenEnableCompatible != nil && !*p.QwenEnableCompatible {
		return pdk.Errorf("qwenEnableCompatible", "false (DashScope's native API) is not supported by Sluice's ai-proxy yet; leave it unset or true for the OpenAI-compatible mode")
	}
	p.host = p.spec.host
	if p.QwenDomain != "" {
		p.host = p.QwenDomain
	}
	return nil
}

func configureVLLM(p *providerConfig) error {
	p.host = p.spec.host
	switch {
	case p.VLLMCustomURL != "":
		host, path, _, err := splitHostURL(p.VLLMCustomURL)
		if err != nil {
			return pdk.Errorf("vllmCustomUrl", "is not a valid URL: %v", err)
		}
		p.host = host
		if prefix := strings.TrimSuffix(path, "/"); prefix != "" {
			p.openai = &customURL{host: host, prefix: prefix}
		}
	case p.VLLMServerHost != "":
		p.host = p.VLLMServerHost
	}
	return nil
}

func configureOllama(p *providerConfig) error {
	if p.OllamaServerHost == "" {
		return pdk.Errorf("ollamaServerHost", "is required for provider type ollama")
	}
	if p.OllamaServerPort <= 0 || p.OllamaServerPort > 65535 {
		return pdk.Errorf("ollamaServerPort", "is required for provider type ollama (1 to 65535)")
	}
	p.host = p.OllamaServerHost + ":" + strconv.Itoa(p.OllamaServerPort)
	return nil
}

func configureDoubao(p *providerConfig) error {
	p.host = p.spec.host
	if p.DoubaoDomain != "" {
		p.host = p.DoubaoDomain
	}
	return nil
}

func configureZhipu(p *providerConfig) error {
	p.host = p.spec.host
	if p.ZhipuDomain != "" {
		p.host = p.ZhipuDomain
	}
	return nil
}

func configureCloudflare(p *providerConfig) error {
	if p.CloudflareAccountID == "" {
		return pdk.Errorf("cloudflareAccountId", "is required for provider type cloudflare")
	}
	p.host = p.spec.host
	return nil
}

func configureHunyuan(p *providerConfig) error {
	if p.HunyuanAuthID != "" || p.HunyuanAuthKey != "" {
		return pdk.Errorf("hunyuanAuthId", "Tencent Cloud's native API (TC3 signing) is not supported by Sluice's ai-proxy yet; use apiTokens for the OpenAI-compatible endpoint")
	}
	p.host = p.spec.host
	return nil
}

func configureMinimax(p *providerConfig) error {
	if p.MinimaxAPIType != "" && p.MinimaxAPIType != "v2" {
		return pdk.Errorf("minimaxApiType", "%q is not supported by Sluice's ai-proxy yet (only v2)", p.MinimaxAPIType)
	}
	p.host = p.spec.host
	return nil
}

func configureGeneric(p *providerConfig) error {
	p.host = p.GenericHost
	return nil
}

// upstreamPath returns the provider's path for api (resource: the ID path
// from /v1 on, for apiOpenAIResource), and ok=false when the provider does
// not serve api. model is the mapped model (Azure deployments).
func (p *providerConfig) upstreamPath(api apiName, resource, model string) (string, bool) {
	if path, ok := p.Capabilities[string(api)]; ok {
		return path, true
	}
	switch p.spec.family {
	case familyGeneric:
		return "", false
	case familyAzure:
		return p.azurePath(api, resource, model)
	}
	if p.spec.openAIPaths || p.openai != nil {
		std := standardPath(api)
		if api == apiOpenAIResource {
			std = resource
		}
		if std == "" || !strings.HasPrefix(string(api), "openai/") {
			return "", false
		}
		if !p.spec.openAIPaths {
			if _, ok := p.spec.paths[api]; !ok {
				return "", false
			}
		}
		if c := p.openai; c != nil {
			if api == c.verbatimAPI {
				return c.verbatimPath, true
			}
			return c.prefix + strings.TrimPrefix(std, "/v1"), true
		}
		return std, true
	}
	if p.Type == "cloudflare" && api == apiChat {
		return "/client/v4/accounts/" + p.CloudflareAccountID + "/ai/v1/chat/completions", true
	}
	if p.Type == "zhipuai" && p.ZhipuCodePlanMode && api == apiChat {
		return "/api/coding/paas/v4/chat/completions", true
	}
	path, ok := p.spec.paths[api]
	return path, ok
}

// azureDeploymentAPIs are the APIs Azure serves under a deployment; the
// others live under /openai.
var azureDeploymentAPIs = map[apiName]bool{
	apiChat: true, apiCompletions: true, apiEmbeddings: true, apiImageGen: true, apiImageEdit: true,
	apiImageVariant: true, apiAudioSpeech: true, apiTranscription: true, apiTranslation: true, apiRealtime: true,
	apiFineTuning: true, apiVideos: true,
}

func (p *providerConfig) azurePath(api apiName, resource, model string) (string, bool) {
	t := p.azure
	if t.fullPath != "" {
		return t.fullPath + t.query, true
	}
	std := standardPath(api)
	if api == apiOpenAIResource {
		std = resource
	}
	if std == "" || !strings.HasPrefix(string(api), "openai/") {
		return "", false
	}
	rest := strings.TrimPrefix(std, "/v1")
	if azureDeploymentAPIs[api] {
		d := t.deployment
		if d == "" {
			d = model
		}
		if d == "" {
			return "", false
		}
		return "/openai/deployments/" + d + rest + t.query, true
	}
	return "/openai" + rest + t.query, true
}

// nativeMessages reports whether the provider serves Anthropic's
// /v1/messages itself (Claude, and providers with an Anthropic-compatible
// endpoint), so a Claude client's request needs no conversion.
func (p *providerConfig) nativeMessages() bool {
	if _, ok := p.Capabilities[string(apiMessages)]; ok {
		return true
	}
	_, ok := p.spec.paths[apiMessages]
	return ok
}

// authHeaders returns the headers carrying token, and the headers to
// remove, for the provider's auth style.
// The result for a configured token is built at configure time and
// shared: callers must not modify it.
func (p *providerConfig) authHeaders(token string) (set [][2]string, remove []string) {
	if a, ok := p.auth[token]; ok {
		return a.set, a.remove
	}
	return p.buildAuthHeaders(token)
}

// authFor is the result of authHeaders for one token.
type authFor struct {
	set    [][2]string
	remove []string
}

// compileAuth builds authHeaders' answers for the configured tokens.
func (p *providerConfig) compileAuth() {
	p.auth = make(map[string]authFor, len(p.APITokens))
	for _, t := range p.APITokens {
		set, remove := p.buildAuthHeaders(t)
		p.auth[t] = authFor{set, remove}
	}
}

func (p *providerConfig) buildAuthHeaders(token string) (set [][2]string, remove []string) {
	switch p.spec.auth {
	case authBearer:
		if token != "" {
			set = append(set, [2]string{"authorization", "Bearer " + token})
		}
	case authRaw:
		set = append(set, [2]string{"authorization", token})
	case authAzure:
		set = append(set, [2]string{"api-key", token})
	case authClaude:
		set = append(set, [2]string{"x-api-key", token}, [2]string{"anthropic-version", p.ClaudeVersion})
		remove = append(remove, "authorization")
	}
	return set, remove
}
