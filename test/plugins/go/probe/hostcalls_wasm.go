//go:build wasip1

package main

import "unsafe"

// The probe calls the host directly instead of through the SDK's wrappers so
// that every step can report the exact proxy_status_t the host returned and
// pass arguments the SDK never would (raw start/size to set_buffer_bytes,
// map types 6/7 for writes, stream types 2/3). Only http_call and
// redis_call go through the SDK, because the SDK owns their callbacks.

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg *byte, msgLen int32) uint32

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(retLevel *uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(retTime *uint64) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(period uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(retCode *uint32, retMsg unsafe.Pointer, retMsgLen *int32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path *byte, pathLen int32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_set_property
func proxySetProperty(path *byte, pathLen int32, value *byte, valueLen int32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType uint32, key *byte, keyLen int32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType uint32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(mapType uint32, data *byte, dataLen int32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType uint32, key *byte, keyLen int32, value *byte, valueLen int32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mapType uint32, key *byte, keyLen int32, value *byte, valueLen int32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(mapType uint32, key *byte, keyLen int32) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(mapType uint32, retSize *uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufType uint32, start uint32, maxSize uint32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(bufType uint32, start uint32, size uint32, data *byte, dataLen int32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(bufType uint32, retLen *uint32, retFlags *uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(streamType uint32) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(streamType uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(code uint32, details *byte, detailsLen int32, body *byte, bodyLen int32,
	headers *byte, headersLen int32, grpcStatus int32) uint32

//go:wasmimport env proxy_redis_init
func proxyRedisInit(cluster *byte, clusterLen int32, user *byte, userLen int32, pass *byte, passLen int32, timeoutMs uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key *byte, keyLen int32, retData unsafe.Pointer, retLen *int32, retCas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key *byte, keyLen int32, value *byte, valueLen int32, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func proxyRegisterSharedQueue(name *byte, nameLen int32, retID *uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxyResolveSharedQueue(vmID *byte, vmIDLen int32, name *byte, nameLen int32, retID *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxyEnqueueSharedQueue(id uint32, data *byte, dataLen int32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxyDequeueSharedQueue(id uint32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name *byte, nameLen int32, retID *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func proxyGetMetric(id uint32, retValue *uint64) uint32

//go:wasmimport env proxy_done
func proxyDone() uint32

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(name *byte, nameLen int32, args *byte, argsLen int32, retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_inject_encoded_data_to_filter_chain
func proxyInjectEncodedDataToFilterChain(body *byte, bodyLen int32, endStream uint32) uint32

//go:wasmimport env proxy_get_upstream_hosts
func proxyGetUpstreamHosts(retData unsafe.Pointer, retLen *int32) uint32

//go:wasmimport env proxy_set_upstream_override_host
func proxySetUpstreamOverrideHost(addr *byte, addrLen int32) uint32
