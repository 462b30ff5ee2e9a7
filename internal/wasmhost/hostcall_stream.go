package wasmhost

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/sluicegw/sluice/internal/gateway"
)

// proxy_continue_stream(type)
func hcContinueStream(in *Instance, s []uint64) Status {
	t := u32(s[0])
	if t > 3 {
		return StatusBadArgument
	}
	if t > 1 {
		return StatusUnimplemented
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	f.h.Continue(gateway.Direction(t))
	return StatusOK
}

func hcContinueRequest010(in *Instance, _ []uint64) Status {
	return hcContinueStream(in, []uint64{0})
}

func hcContinueResponse010(in *Instance, _ []uint64) Status {
	return hcContinueStream(in, []uint64{1})
}

func hcClearRouteCache010(*Instance, []uint64) Status { return StatusOK }

// proxy_close_stream(type)
func hcCloseStream(in *Instance, s []uint64) Status {
	t := u32(s[0])
	if t > 3 {
		return StatusBadArgument
	}
	if t > 1 {
		return StatusUnimplemented
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	f.h.Reset()
	return StatusOK
}

// proxy_send_local_response(status, details_ptr, details_len, body_ptr,
// body_len, headers_ptr, headers_len, grpc_status)
func hcSendLocalResponse(in *Instance, s []uint64) Status {
	details, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	body, ok := in.readCopy(u32(s[3]), u32(s[4]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	raw, ok := in.readCopy(u32(s[5]), u32(s[6]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	keys, vals, err := decodePairs(raw)
	if err != nil {
		return StatusBadArgument
	}
	status := int(u32(s[0]))
	if status < 100 || status > 999 {
		return StatusBadArgument
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	hdrs := make([]gateway.HeaderField, len(keys))
	for i := range keys {
		hdrs[i] = gateway.HeaderField{Name: keys[i], Value: vals[i]}
	}
	details = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, details)
	if details == "" {
		details = "wasm_local_reply"
	}
	if !f.h.SendLocalReply(status, body, hdrs, details) {
		return StatusBadArgument
	}
	return StatusOK
}

// proxy_inject_encoded_data_to_filter_chain(body_ptr, body_len, end_stream)
func hcInjectData(in *Instance, s []uint64) Status {
	body, ok := in.readCopy(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	f.h.InjectData(gateway.Response, body, u32(s[2]) != 0)
	return StatusOK
}

// proxy_get_upstream_hosts(ret_ptr_ptr, ret_size_ptr)
func hcGetUpstreamHosts(in *Instance, s []uint64) Status {
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	c := f.stream().Cluster()
	if c == nil {
		return in.returnBytes(nil, u32(s[0]), u32(s[1]))
	}
	var keys, vals []string
	for _, ep := range c.Endpoints() {
		health := "Healthy"
		if !ep.Healthy() {
			health = "Unhealthy"
		}
		v, _ := json.Marshal(map[string]string{"health_status": health, "metrics": ""})
		keys = append(keys, ep.Address())
		vals = append(vals, string(v))
	}
	return in.returnBytes(encodePairs(keys, vals), u32(s[0]), u32(s[1]))
}

// proxy_set_upstream_override_host(addr_ptr, addr_len)
func hcSetUpstreamOverride(in *Instance, s []uint64) Status {
	addr, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	f.stream().SetUpstreamOverride(addr)
	return StatusOK
}
