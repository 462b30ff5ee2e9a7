//go:build !wasip1

package main

import "unsafe"

// Native builds (go vet, unit tests of the configuration decoder) get
// stand-ins that answer UNIMPLEMENTED; the real imports are in
// hostcalls_wasm.go.

func proxyLog(level uint32, msg *byte, msgLen int32) uint32 { return statusUnimplemented }

func proxyGetLogLevel(retLevel *uint32) uint32 { return statusUnimplemented }

func proxyGetCurrentTimeNanoseconds(retTime *uint64) uint32 { return statusUnimplemented }

func proxySetTickPeriodMilliseconds(period uint32) uint32 { return statusUnimplemented }

func proxyGetStatus(retCode *uint32, retMsg unsafe.Pointer, retMsgLen *int32) uint32 {
	return statusUnimplemented
}

func proxyGetProperty(path *byte, pathLen int32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxySetProperty(path *byte, pathLen int32, value *byte, valueLen int32) uint32 {
	return statusUnimplemented
}

func proxyGetHeaderMapValue(mapType uint32, key *byte, keyLen int32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxyGetHeaderMapPairs(mapType uint32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxySetHeaderMapPairs(mapType uint32, data *byte, dataLen int32) uint32 {
	return statusUnimplemented
}

func proxyAddHeaderMapValue(mapType uint32, key *byte, keyLen int32, value *byte, valueLen int32) uint32 {
	return statusUnimplemented
}

func proxyReplaceHeaderMapValue(mapType uint32, key *byte, keyLen int32, value *byte, valueLen int32) uint32 {
	return statusUnimplemented
}

func proxyRemoveHeaderMapValue(mapType uint32, key *byte, keyLen int32) uint32 {
	return statusUnimplemented
}

func proxyGetHeaderMapSize(mapType uint32, retSize *uint32) uint32 { return statusUnimplemented }

func proxyGetBufferBytes(bufType uint32, start uint32, maxSize uint32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxySetBufferBytes(bufType uint32, start uint32, size uint32, data *byte, dataLen int32) uint32 {
	return statusUnimplemented
}

func proxyGetBufferStatus(bufType uint32, retLen *uint32, retFlags *uint32) uint32 {
	return statusUnimplemented
}

func proxyContinueStream(streamType uint32) uint32 { return statusUnimplemented }

func proxyCloseStream(streamType uint32) uint32 { return statusUnimplemented }

func proxySendLocalResponse(code uint32, details *byte, detailsLen int32, body *byte, bodyLen int32,
	headers *byte, headersLen int32, grpcStatus int32) uint32 {
	return statusUnimplemented
}

func proxyRedisInit(cluster *byte, clusterLen int32, user *byte, userLen int32, pass *byte, passLen int32, timeoutMs uint32) uint32 {
	return statusUnimplemented
}

func proxyGetSharedData(key *byte, keyLen int32, retData unsafe.Pointer, retLen *int32, retCas *uint32) uint32 {
	return statusUnimplemented
}

func proxySetSharedData(key *byte, keyLen int32, value *byte, valueLen int32, cas uint32) uint32 {
	return statusUnimplemented
}

func proxyRegisterSharedQueue(name *byte, nameLen int32, retID *uint32) uint32 {
	return statusUnimplemented
}

func proxyResolveSharedQueue(vmID *byte, vmIDLen int32, name *byte, nameLen int32, retID *uint32) uint32 {
	return statusUnimplemented
}

func proxyEnqueueSharedQueue(id uint32, data *byte, dataLen int32) uint32 { return statusUnimplemented }

func proxyDequeueSharedQueue(id uint32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxyDefineMetric(metricType uint32, name *byte, nameLen int32, retID *uint32) uint32 {
	return statusUnimplemented
}

func proxyIncrementMetric(id uint32, delta int64) uint32 { return statusUnimplemented }

func proxyRecordMetric(id uint32, value uint64) uint32 { return statusUnimplemented }

func proxyGetMetric(id uint32, retValue *uint64) uint32 { return statusUnimplemented }

func proxyDone() uint32 { return statusUnimplemented }

func proxyCallForeignFunction(name *byte, nameLen int32, args *byte, argsLen int32, retData unsafe.Pointer, retLen *int32) uint32 {
	return statusUnimplemented
}

func proxyInjectEncodedDataToFilterChain(body *byte, bodyLen int32, endStream uint32) uint32 {
	return statusUnimplemented
}

func proxyGetUpstreamHosts(retData unsafe.Pointer, retLen *int32) uint32 { return statusUnimplemented }

func proxySetUpstreamOverrideHost(addr *byte, addrLen int32) uint32 { return statusUnimplemented }
