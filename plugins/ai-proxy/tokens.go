package main

import (
	"encoding/json"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
)

// This file is API-token selection, rotation and failover (plugins-C.md
// §6.7). Token health lives in proxy-wasm shared data, so every VM of the
// plugin sees the same state; it is updated with compare-and-swap. A tick
// every failover.healthCheckInterval lets one VM (holding a lease in
// shared data) send a small chat completion with each unavailable token to
// the cluster the failing requests went to; failover.successThreshold
// answers of 200 make the token available again.
//
// Shared data holds token fingerprints (FNV-1a), never the tokens.

// configuring collects, while the host configures the plugin, the
// providers with failover enabled (parseConfig appends to it).
var configuring []*providerConfig

const (
	maxCASRetries = 10
	leaseDuration = 60 * time.Second
)

// tokenState is one provider's token health, in shared data under
// <poolKey>-state.
type tokenState struct {
	Down  []string        `json:"down,omitempty"`
	Fail  map[string]int  `json:"fail,omitempty"`
	OK    map[string]int  `json:"ok,omitempty"`
	Check *healthEndpoint `json:"check,omitempty"`
}

// healthEndpoint is where health checks go: recorded from the request that
// made a token unavailable.
type healthEndpoint struct {
	Cluster string `json:"cluster"`
	Host    string `json:"host"`
	Path    string `json:"path"`
	Body    []byte `json:"body"`
}

// lease says which VM runs the health checks, in <poolKey>-lease.
type lease struct {
	VM    string `json:"vm"`
	Until int64  `json:"until"` // unix ms
}

// fingerprint identifies a token in shared data without storing it.
func fingerprint(token string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(token))
	return strconv.FormatUint(h.Sum64(), 16)
}

func failoverOn(p *providerConfig) bool {
	return p.Failover != nil && p.Failover.Enabled && len(p.APITokens) > 0
}

// loadState reads a provider's token state and its CAS value.
func loadState(key string) (tokenState, uint32) {
	var st tokenState
	data, cas, err := proxywasm.GetSharedData(key + "-state")
	if err == nil && len(data) > 0 {
		_ = json.Unmarshal(data, &st)
	}
	return st, cas
}

// updateState applies fn to a provider's token state with CAS retries;
// fn returns false to leave the state alone.
func updateState(key string, fn func(*tokenState) bool) {
	for range maxCASRetries {
		st, cas := loadState(key)
		if st.Fail == nil {
			st.Fail = map[string]int{}
		}
		if st.OK == nil {
			st.OK = map[string]int{}
		}
		if !fn(&st) {
			return
		}
		data, _ := json.Marshal(st)
		err := proxywasm.SetSharedData(key+"-state", data, cas)
		if err == nil {
			return
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			pdk.Log().Warnf("failover state %s: %v", key, err)
			return
		}
	}
	pdk.Log().Warnf("failover state %s: gave up after %d compare-and-swap conflicts", key, maxCASRetries)
}

// isStatefulAPI: APIs whose objects live with one account, so a consumer
// sticks to one token.
func isStatefulAPI(api apiName) bool {
	switch api {
	case apiResponses, apiFiles, apiBatches, apiFineTuning, apiOpenAIResource:
		return true
	}
	return false
}

// chooseToken picks the request's token: among the available ones when
// failover is on (all unavailable → among all), by the consumer's hash for
// stateful APIs, else at random.
func chooseToken(ctx *pdk.Context, p *providerConfig, api apiName) string {
	tokens := p.APITokens
	switch len(tokens) {
	case 0:
		return ""
	case 1:
		// Whatever its health, the only token is the choice.
		return tokens[0]
	}
	if failoverOn(p) {
		st, _ := loadState(p.poolKey)
		var avail []string
		for _, t := range tokens {
			if !slices.Contains(st.Down, fingerprint(t)) {
				avail = append(avail, t)
			}
		}
		if len(avail) > 0 {
			tokens = avail
		}
	}
	if isStatefulAPI(api) {
		if consumer, ok := ctx.RequestHeader(hdrConsumer); ok && consumer != "" {
			h := fnv.New32a()
			_, _ = h.Write([]byte(consumer))
			return tokens[int(h.Sum32()%uint32(len(tokens)))]
		}
	}
	return tokens[rand.IntN(len(tokens))]
}

// recordOutcome counts a failure or a success of the request's token.
func recordOutcome(ctx *pdk.Context, p *providerConfig, token, status string) {
	if !failoverOn(p) || token == "" {
		return
	}
	fp := fingerprint(token)
	f := p.Failover
	if statusMatches(f.onStatus, status) {
		var check *healthEndpoint
		updateState(p.poolKey, func(st *tokenState) bool {
			if slices.Contains(st.Down, fp) {
				return false
			}
			st.Fail[fp]++
			if st.Fail[fp] < f.FailureThreshold {
				return true
			}
			if check == nil {
				check = healthCheckFor(ctx, p)
			}
			st.Down = append(st.Down, fp)
			delete(st.Fail, fp)
			delete(st.OK, fp)
			if check != nil {
				st.Check = check
			}
			ctx.Log().Warnf("API token %s… of provider %s is unavailable after %d failures (last status %s)", redact(token), p.Type, f.FailureThreshold, status)
			return true
		})
		return
	}
	if status == "200" {
		updateState(p.poolKey, func(st *tokenState) bool {
			if st.Fail[fp] == 0 {
				return false
			}
			delete(st.Fail, fp)
			return true
		})
	}
}

// redact keeps the first 4 characters of a token for log lines.
func redact(token string) string {
	if len(token) <= 4 {
		return ""
	}
	return token[:4]
}

// healthCheckFor builds the health-check request for p, sent to the
// cluster the current request went to.
func healthCheckFor(ctx *pdk.Context, p *providerConfig) *healthEndpoint {
	model := p.mapping.Map(p.Failover.HealthCheckModel)
	body, _ := json.Marshal(map[string]any{"model": model, "messages": []any{map[string]string{"role": "user", "content": "who are you?"}}})
	if p.spec.family == familyClaude {
		var err error
		if body, err = openAIToClaudeRequest(body, model); err != nil {
			return nil
		}
	}
	path, ok := p.upstreamPath(apiChat, "", model)
	if !ok {
		return nil
	}
	if p.ProviderBasePath != "" {
		path = p.ProviderBasePath + path
	}
	return &healthEndpoint{Cluster: ctx.ClusterName(), Host: p.host, Path: path, Body: body}
}

// registerWithHealthChecks registers the plugin with a root context that
// also runs the failover health checks.
func registerWithHealthChecks(p *pdk.Plugin[*config]) { proxywasm.SetVMContext(newVM(p)) }

// newVM wraps the kit's VM context: its plugin contexts tick.
func newVM(p *pdk.Plugin[*config]) types.VMContext { return vmWithTicks{p.VMContext()} }

type vmWithTicks struct{ types.VMContext }

func (v vmWithTicks) NewPluginContext(id uint32) types.PluginContext {
	return &rootWithTicks{PluginContext: v.VMContext.NewPluginContext(id), vmID: strconv.FormatUint(rand.Uint64(), 16)}
}

// rootWithTicks is the kit's root context plus the failover ticks.
type rootWithTicks struct {
	types.PluginContext
	vmID  string
	pools []*providerConfig
}

// OnPluginStart configures through the kit, then resets the token state
// of every provider with failover and starts the tick.
func (r *rootWithTicks) OnPluginStart(size int) types.OnPluginStartStatus {
	configuring = nil
	st := r.PluginContext.OnPluginStart(size)
	found := configuring
	configuring = nil
	if st != types.OnPluginStartStatusOK {
		return st
	}
	r.pools = nil
	seen := map[string]bool{}
	interval := 0
	for _, p := range found {
		if seen[p.poolKey] {
			continue
		}
		seen[p.poolKey] = true
		r.pools = append(r.pools, p)
		_ = proxywasm.SetSharedData(p.poolKey+"-state", []byte("{}"), 0)
		if interval == 0 || p.Failover.HealthCheckInterval < interval {
			interval = p.Failover.HealthCheckInterval
		}
	}
	if interval > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(interval)); err != nil {
			pdk.Log().Warnf("failover: cannot start the health-check tick: %v", err)
		}
	}
	return st
}

// OnTick health-checks the unavailable tokens of each provider whose
// lease this VM holds.
func (r *rootWithTicks) OnTick() {
	for _, p := range r.pools {
		if !r.holdLease(p.poolKey) {
			continue
		}
		st, _ := loadState(p.poolKey)
		if len(st.Down) == 0 || st.Check == nil {
			continue
		}
		for _, t := range p.APITokens {
			if slices.Contains(st.Down, fingerprint(t)) {
				checkToken(p, st.Check, t)
			}
		}
	}
}

// holdLease takes or renews the health-check lease of key.
func (r *rootWithTicks) holdLease(key string) bool {
	now := time.Now().UnixMilli()
	for range maxCASRetries {
		data, cas, err := proxywasm.GetSharedData(key + "-lease")
		var l lease
		if err == nil && len(data) > 0 {
			_ = json.Unmarshal(data, &l)
		}
		if l.VM != "" && l.VM != r.vmID && l.Until > now {
			return false
		}
		b, _ := json.Marshal(lease{VM: r.vmID, Until: now + leaseDuration.Milliseconds()})
		err = proxywasm.SetSharedData(key+"-lease", b, cas)
		if err == nil {
			return true
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return false
		}
	}
	return false
}

// checkToken sends one health check with token.
func checkToken(p *providerConfig, ep *healthEndpoint, token string) {
	headers := [][2]string{{":method", "POST"}, {":path", ep.Path}, {":authority", ep.Host}, {"content-type", "application/json"}}
	set, _ := p.authHeaders(token)
	headers = append(headers, set...)
	fp := fingerprint(token)
	_, err := proxywasm.DispatchHttpCall(ep.Cluster, headers, ep.Body, nil, uint32(p.Failover.HealthCheckTimeout), func(int, int, int) {
		status := ""
		hs, _ := proxywasm.GetHttpCallResponseHeaders()
		for _, h := range hs {
			if h[0] == ":status" {
				status = h[1]
			}
		}
		healthResult(p, fp, status == "200")
	})
	if err != nil {
		pdk.Log().Warnf("failover: health check of provider %s to cluster %s refused: %v", p.Type, ep.Cluster, err)
	}
}

// healthResult counts one health-check answer.
func healthResult(p *providerConfig, fp string, ok bool) {
	updateState(p.poolKey, func(st *tokenState) bool {
		i := slices.Index(st.Down, fp)
		if i < 0 {
			return false
		}
		if !ok {
			delete(st.OK, fp)
			return true
		}
		st.OK[fp]++
		if st.OK[fp] >= p.Failover.SuccessThreshold {
			st.Down = slices.Delete(st.Down, i, i+1)
			delete(st.OK, fp)
			delete(st.Fail, fp)
			pdk.Log().Infof("an API token of provider %s is available again", p.Type)
		}
		return true
	})
}
