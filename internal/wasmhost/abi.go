package wasmhost

// Status is a proxy_status_t returned by every hostcall.
type Status uint32

// Proxy-Wasm status codes (spec/host.md §1.2).
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCASMismatch          Status = 8
	StatusBrokenConnection     Status = 9
	StatusInternalFailure      Status = 10
	StatusUnimplemented        Status = 12
)

// Buffer types.
const (
	bufferRequestBody      = 0
	bufferResponseBody     = 1
	bufferDownstreamData   = 2
	bufferUpstreamData     = 3
	bufferHTTPCallResponse = 4
	bufferGRPCReceive      = 5
	bufferVMConfiguration  = 6
	bufferPluginConfig     = 7
	bufferCallData         = 8
	bufferRedisResponse    = 9
)

// Map types.
const (
	mapRequestHeaders      = 0
	mapRequestTrailers     = 1
	mapResponseHeaders     = 2
	mapResponseTrailers    = 3
	mapGRPCInitialMetadata = 4
	mapGRPCTrailing        = 5
	mapHTTPCallHeaders     = 6
	mapHTTPCallTrailers    = 7
)

// Log levels.
const (
	LogTrace    = 0
	LogDebug    = 1
	LogInfo     = 2
	LogWarn     = 3
	LogError    = 4
	LogCritical = 5
)

// Metric types.
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
)

// ABIVersion is the Proxy-Wasm ABI a module declares through its marker
// export.
type ABIVersion int

// ABI versions.
const (
	ABIUnknown ABIVersion = iota
	ABI010
	ABI020
	ABI021
	ABI0100 // Higress 0.2.100
)

func (v ABIVersion) String() string {
	switch v {
	case ABI010:
		return "0.1.0"
	case ABI020:
		return "0.2.0"
	case ABI021:
		return "0.2.1"
	case ABI0100:
		return "0.2.100"
	}
	return "unknown"
}

// abiMarkers maps marker exports to versions, most specific first.
var abiMarkers = []struct {
	export  string
	version ABIVersion
}{
	{"proxy_abi_version_0_2_100", ABI0100},
	{"proxy_abi_version_0_2_1", ABI021},
	{"proxy_abi_version_0_2_0", ABI020},
	{"proxy_abi_version_0_1_0", ABI010},
}
