package wasmhost

import "github.com/sluicegw/sluice/internal/gateway"

// buffer returns the bytes of buffer type t and, for body buffers, the
// mutable gateway buffer.
func (in *Instance) buffer(t uint32) ([]byte, *gateway.Buffer, Status) {
	switch t {
	case bufferRequestBody, bufferResponseBody:
		f := in.effectiveStream()
		if f == nil {
			return nil, nil, StatusNotFound
		}
		b := f.body[t]
		if b == nil {
			return nil, nil, StatusNotFound
		}
		return b.Bytes(), b, StatusOK
	case bufferHTTPCallResponse:
		if in.callResp == nil {
			return nil, nil, StatusNotFound
		}
		return in.callResp.body, nil, StatusOK
	case bufferPluginConfig:
		if in.configBuf == nil {
			return nil, nil, StatusNotFound
		}
		return in.configBuf, nil, StatusOK
	case bufferVMConfiguration:
		return nil, nil, StatusOK
	case bufferRedisResponse:
		if in.redisReply == nil {
			return nil, nil, StatusNotFound
		}
		return in.redisReply, nil, StatusOK
	case bufferDownstreamData, bufferUpstreamData, bufferGRPCReceive, bufferCallData:
		return nil, nil, StatusNotFound
	}
	return nil, nil, StatusBadArgument
}

// proxy_get_buffer_bytes(type, start, max_size, ret_ptr_ptr, ret_size_ptr)
func hcGetBufferBytes(in *Instance, s []uint64) Status {
	data, _, st := in.buffer(u32(s[0]))
	if st != StatusOK {
		return st
	}
	start, max := uint64(u32(s[1])), uint64(u32(s[2]))
	if start >= uint64(len(data)) || max == 0 {
		return in.returnBytes(nil, u32(s[3]), u32(s[4]))
	}
	end := start + max
	if end > uint64(len(data)) {
		end = uint64(len(data))
	}
	return in.returnBytes(data[start:end], u32(s[3]), u32(s[4]))
}

// proxy_set_buffer_bytes(type, start, size, data_ptr, data_len): Envoy's
// rules: start 0 drops the first size bytes then prepends data; start at or
// past the end appends; anything else is BAD_ARGUMENT.
func hcSetBufferBytes(in *Instance, s []uint64) Status {
	t := u32(s[0])
	data, ok := in.readCopy(u32(s[3]), u32(s[4]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if t != bufferRequestBody && t != bufferResponseBody {
		if _, _, st := in.buffer(t); st == StatusNotFound {
			return StatusNotFound
		}
		return StatusBadArgument
	}
	_, b, st := in.buffer(t)
	if st != StatusOK {
		return st
	}
	start, size := u32(s[1]), u32(s[2])
	switch {
	case start == 0:
		n := int(min(uint64(size), uint64(b.Len())))
		b.Replace(0, n, data)
	case uint64(start) >= uint64(b.Len()):
		b.Append(data)
	default:
		return StatusBadArgument
	}
	return StatusOK
}

// proxy_get_buffer_status(type, ret_len_ptr, ret_flags_ptr)
func hcGetBufferStatus(in *Instance, s []uint64) Status {
	data, _, st := in.buffer(u32(s[0]))
	if st != StatusOK {
		return st
	}
	if !in.writeU32(u32(s[1]), uint32(len(data))) || !in.writeU32(u32(s[2]), 0) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}
