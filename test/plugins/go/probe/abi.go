package main

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unsafe"
)

// proxy_status_t values (host spec §1.2).
const (
	statusOK                  = 0
	statusNotFound            = 1
	statusBadArgument         = 2
	statusInvalidMemoryAccess = 6
	statusEmpty               = 7
	statusCasMismatch         = 8
	statusInternalFailure     = 10
	statusUnimplemented       = 12
)

// maxSize is what the SDK passes as "everything" to get/set_buffer_bytes.
const maxSize = 0x7fffffff

func strPtr(s string) *byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.StringData(s)
}

func bytesPtr(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

// copyOut copies a host-allocated buffer into a Go-owned slice. A nil
// pointer (the host's "empty") gives nil.
func copyOut(p *byte, n int32) []byte {
	if p == nil || n <= 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...)
}

func hostLog(level uint32, msg string) uint32 {
	return proxyLog(level, strPtr(msg), int32(len(msg)))
}

func getProperty(path []string) ([]byte, uint32) {
	raw := serializePath(path)
	var p *byte
	var n int32
	st := proxyGetProperty(bytesPtr(raw), int32(len(raw)), unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func setProperty(path []string, value []byte) uint32 {
	raw := serializePath(path)
	return proxySetProperty(bytesPtr(raw), int32(len(raw)), bytesPtr(value), int32(len(value)))
}

func serializePath(path []string) []byte {
	var out []byte
	for i, seg := range path {
		if i > 0 {
			out = append(out, 0)
		}
		out = append(out, seg...)
	}
	return out
}

func getHeader(mapType uint32, key string) ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyGetHeaderMapValue(mapType, strPtr(key), int32(len(key)), unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func getHeaderPairs(mapType uint32) ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyGetHeaderMapPairs(mapType, unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func setHeaderPairs(mapType uint32, pairs [][2]string) uint32 {
	raw := serializePairs(pairs)
	return proxySetHeaderMapPairs(mapType, bytesPtr(raw), int32(len(raw)))
}

func addHeader(mapType uint32, key, value string) uint32 {
	return proxyAddHeaderMapValue(mapType, strPtr(key), int32(len(key)), strPtr(value), int32(len(value)))
}

func replaceHeader(mapType uint32, key, value string) uint32 {
	return proxyReplaceHeaderMapValue(mapType, strPtr(key), int32(len(key)), strPtr(value), int32(len(value)))
}

func removeHeader(mapType uint32, key string) uint32 {
	return proxyRemoveHeaderMapValue(mapType, strPtr(key), int32(len(key)))
}

func getBuffer(bufType, start, max uint32) ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyGetBufferBytes(bufType, start, max, unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func setBuffer(bufType, start, size uint32, data []byte) uint32 {
	return proxySetBufferBytes(bufType, start, size, bytesPtr(data), int32(len(data)))
}

func sendLocalResponse(code uint32, details string, body []byte, headers [][2]string, grpcStatus int32) uint32 {
	raw := serializePairs(headers)
	return proxySendLocalResponse(code, strPtr(details), int32(len(details)), bytesPtr(body), int32(len(body)),
		bytesPtr(raw), int32(len(raw)), grpcStatus)
}

func redisInit(cluster, user, pass string, timeoutMs uint32) uint32 {
	return proxyRedisInit(strPtr(cluster), int32(len(cluster)), strPtr(user), int32(len(user)),
		strPtr(pass), int32(len(pass)), timeoutMs)
}

func getSharedData(key string) ([]byte, uint32, uint32) {
	var p *byte
	var n int32
	var cas uint32
	st := proxyGetSharedData(strPtr(key), int32(len(key)), unsafe.Pointer(&p), &n, &cas)
	return copyOut(p, n), cas, st
}

func setSharedData(key string, value []byte, cas uint32) uint32 {
	return proxySetSharedData(strPtr(key), int32(len(key)), bytesPtr(value), int32(len(value)), cas)
}

func registerQueue(name string) (uint32, uint32) {
	var id uint32
	st := proxyRegisterSharedQueue(strPtr(name), int32(len(name)), &id)
	return id, st
}

func resolveQueue(vmID, name string) (uint32, uint32) {
	var id uint32
	st := proxyResolveSharedQueue(strPtr(vmID), int32(len(vmID)), strPtr(name), int32(len(name)), &id)
	return id, st
}

func dequeue(id uint32) ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyDequeueSharedQueue(id, unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func defineMetric(metricType uint32, name string) (uint32, uint32) {
	var id uint32
	st := proxyDefineMetric(metricType, strPtr(name), int32(len(name)), &id)
	return id, st
}

func callForeign(name string, args []byte) ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyCallForeignFunction(strPtr(name), int32(len(name)), bytesPtr(args), int32(len(args)), unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func getUpstreamHosts() ([]byte, uint32) {
	var p *byte
	var n int32
	st := proxyGetUpstreamHosts(unsafe.Pointer(&p), &n)
	return copyOut(p, n), st
}

func getStatus() (uint32, []byte, uint32) {
	var code uint32
	var p *byte
	var n int32
	st := proxyGetStatus(&code, unsafe.Pointer(&p), &n)
	return code, copyOut(p, n), st
}

// serializePairs encodes a header map the way the ABI expects (spec §3.1).
func serializePairs(pairs [][2]string) []byte {
	size := 4
	for _, kv := range pairs {
		size += 8 + len(kv[0]) + len(kv[1]) + 2
	}
	out := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	for _, kv := range pairs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(kv[0])))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(kv[1])))
	}
	for _, kv := range pairs {
		out = append(out, kv[0]...)
		out = append(out, 0)
		out = append(out, kv[1]...)
		out = append(out, 0)
	}
	return out
}

// parsePairs decodes the §3.1 serialization, checking every bound: the
// probe reports a malformed map instead of trapping on it.
func parsePairs(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("pairs: %d bytes, need at least 4", len(b))
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/8 {
		return nil, fmt.Errorf("pairs: count %d does not fit in %d bytes", n, len(b))
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	out := make([][2]string, 0, n)
	for i := 0; i < n; i++ {
		kl := int(binary.LittleEndian.Uint32(sizes[8*i:]))
		vl := int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if kl+vl+2 > len(data) || kl < 0 || vl < 0 {
			return nil, fmt.Errorf("pairs: entry %d (key %d, value %d bytes) overruns the buffer", i, kl, vl)
		}
		k := string(data[:kl])
		v := string(data[kl+1 : kl+1+vl])
		out = append(out, [2]string{k, v})
		data = data[kl+vl+2:]
	}
	return out, nil
}

func statusText(st uint32) string { return strconv.FormatUint(uint64(st), 10) }
