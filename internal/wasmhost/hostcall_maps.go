package wasmhost

import (
	"errors"
	"strings"

	"github.com/sluicegw/sluice/internal/gateway"
)

// headerMap returns the map of type t for the current call; nil when it is
// not available now.
func (in *Instance) headerMap(t uint32) (*gateway.Headers, Status) {
	switch t {
	case mapHTTPCallHeaders, mapHTTPCallTrailers:
		if in.callResp == nil {
			return nil, StatusNotFound
		}
		h := in.callResp.trailers
		if t == mapHTTPCallHeaders {
			h = in.callResp.headers
		}
		if h == nil { // a reset (no headers) or a response without trailers
			return nil, StatusNotFound
		}
		return h, StatusOK
	case mapRequestHeaders, mapRequestTrailers, mapResponseHeaders, mapResponseTrailers:
	default:
		return nil, StatusBadArgument
	}
	f := in.effectiveStream()
	if f == nil {
		return nil, StatusBadArgument
	}
	st := f.stream()
	var h *gateway.Headers
	switch t {
	case mapRequestHeaders:
		h = st.RequestHeaders()
	case mapRequestTrailers:
		h = st.RequestTrailers()
	case mapResponseHeaders:
		h = st.ResponseHeaders()
	case mapResponseTrailers:
		h = st.ResponseTrailers()
	}
	if h == nil {
		// Not available now (response headers during the request, trailers
		// that did not come): Envoy answers BAD_ARGUMENT, except in the
		// access-log phase where absent maps read as NOT_FOUND.
		if f.phase == "log" {
			return nil, StatusNotFound
		}
		return nil, StatusBadArgument
	}
	return h, StatusOK
}

func mutationStatus(err error) Status {
	switch {
	case err == nil:
		return StatusOK
	case errors.Is(err, gateway.ErrHeadersSealed):
		return StatusBadArgument
	}
	return StatusInternalFailure
}

// writable rejects the read-only callout maps.
func writable(t uint32) bool { return t <= mapResponseTrailers }

// proxy_get_header_map_value(map, key_ptr, key_len, ret_ptr_ptr, ret_size_ptr)
func hcGetHeaderValue(in *Instance, s []uint64) Status {
	key, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	h, st := in.headerMap(u32(s[0]))
	if st != StatusOK {
		if st == StatusNotFound {
			return StatusNotFound
		}
		return st
	}
	v, found := h.Get(key)
	if !found {
		return StatusNotFound
	}
	return in.returnBytes([]byte(v), u32(s[3]), u32(s[4]))
}

// proxy_get_header_map_pairs(map, ret_ptr_ptr, ret_size_ptr)
func hcGetHeaderPairs(in *Instance, s []uint64) Status {
	h, st := in.headerMap(u32(s[0]))
	if st == StatusBadArgument && u32(s[0]) > mapHTTPCallTrailers {
		return st
	}
	if st != StatusOK || h == nil || h.Len() == 0 {
		return in.returnBytes(nil, u32(s[1]), u32(s[2]))
	}
	fields := h.Fields()
	keys := make([]string, len(fields))
	vals := make([]string, len(fields))
	for i, f := range fields {
		keys[i], vals[i] = f.Name, f.Value
	}
	return in.returnBytes(encodePairs(keys, vals), u32(s[1]), u32(s[2]))
}

// proxy_set_header_map_pairs(map, ptr, len)
func hcSetHeaderPairs(in *Instance, s []uint64) Status {
	t := u32(s[0])
	raw, ok := in.readCopy(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	keys, vals, err := decodePairs(raw)
	if err != nil {
		return StatusBadArgument
	}
	if !writable(t) {
		return StatusBadArgument
	}
	h, st := in.headerMap(t)
	if st != StatusOK {
		return st
	}
	fields := make([]gateway.HeaderField, len(keys))
	for i := range keys {
		fields[i] = gateway.HeaderField{Name: strings.ToLower(keys[i]), Value: vals[i]}
	}
	return mutationStatus(h.Replace(fields))
}

func (in *Instance) keyValue(s []uint64) (key, val string, st Status) {
	k, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return "", "", StatusInvalidMemoryAccess
	}
	v, ok := in.readString(u32(s[3]), u32(s[4]))
	if !ok {
		return "", "", StatusInvalidMemoryAccess
	}
	return k, v, StatusOK
}

// proxy_add_header_map_value(map, key_ptr, key_len, val_ptr, val_len)
func hcAddHeaderValue(in *Instance, s []uint64) Status {
	k, v, st := in.keyValue(s)
	if st != StatusOK {
		return st
	}
	if !writable(u32(s[0])) {
		return StatusBadArgument
	}
	h, st := in.headerMap(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return mutationStatus(h.Add(k, v))
}

// proxy_replace_header_map_value(map, key_ptr, key_len, val_ptr, val_len)
func hcReplaceHeaderValue(in *Instance, s []uint64) Status {
	k, v, st := in.keyValue(s)
	if st != StatusOK {
		return st
	}
	if !writable(u32(s[0])) {
		return StatusBadArgument
	}
	h, st := in.headerMap(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return mutationStatus(h.Set(k, v))
}

// proxy_remove_header_map_value(map, key_ptr, key_len)
func hcRemoveHeaderValue(in *Instance, s []uint64) Status {
	k, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if !writable(u32(s[0])) {
		return StatusBadArgument
	}
	h, st := in.headerMap(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return mutationStatus(h.Del(k))
}

// proxy_get_header_map_size(map, ret_size_ptr)
func hcGetHeaderMapSize(in *Instance, s []uint64) Status {
	h, st := in.headerMap(u32(s[0]))
	if st != StatusOK {
		return st
	}
	size := 4
	for _, f := range h.Fields() {
		size += 8 + len(f.Name) + len(f.Value) + 2
	}
	if !in.writeU32(u32(s[1]), uint32(size)) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}
