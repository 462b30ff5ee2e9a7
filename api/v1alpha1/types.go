package v1alpha1

// API groups and kinds understood by Sluice.
const (
	// GroupVersion is the apiVersion of Sluice's own kinds.
	GroupVersion = "sluice.dev/v1alpha1"
	// HigressGroupVersion is the apiVersion of Higress's WasmPlugin.
	HigressGroupVersion = "extensions.higress.io/v1alpha1"

	KindGateway    = "Gateway"
	KindCluster    = "Cluster"
	KindRoute      = "Route"
	KindWasmPlugin = "WasmPlugin"
)

// TypeMeta names the kind of a document.
type TypeMeta struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
}

// ObjectMeta identifies a resource. Name is required and unique per kind.
type ObjectMeta struct {
	Name        string            `yaml:"name" json:"name"`
	Namespace   string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Gateway configures the process: listeners, limits, admin, logs, traces.
type Gateway struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta  `yaml:"metadata" json:"metadata"`
	Spec     GatewaySpec `yaml:"spec" json:"spec"`
}

// GatewaySpec is the body of a Gateway.
type GatewaySpec struct {
	// Listeners accept client traffic. Default: one plain listener on
	// 127.0.0.1:8080 serving HTTP/1.1 and h2c.
	Listeners []Listener `yaml:"listeners,omitempty" json:"listeners,omitempty"`
	// Timeouts bound client connections.
	Timeouts ServerTimeouts `yaml:"timeouts,omitempty" json:"timeouts,omitempty"`
	// Limits bound request sizes.
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitempty"`
	// Admin is the admin listener (health, readiness, metrics, config dump).
	Admin Admin `yaml:"admin,omitempty" json:"admin,omitempty"`
	// AccessLog writes one JSON line per request.
	AccessLog AccessLog `yaml:"accessLog,omitempty" json:"accessLog,omitempty"`
	// Tracing exports OpenTelemetry spans over OTLP. Off by default.
	Tracing Tracing `yaml:"tracing,omitempty" json:"tracing,omitempty"`
	// ShutdownTimeout bounds how long in-flight requests may drain on
	// shutdown. Default 15s.
	ShutdownTimeout Duration `yaml:"shutdownTimeout,omitempty" json:"shutdownTimeout,omitempty"`
	// Wasm configures the Proxy-Wasm runtime that runs WasmPlugins.
	Wasm WasmRuntime `yaml:"wasm,omitempty" json:"wasm,omitempty"`
}

// WasmRuntime configures the Proxy-Wasm runtime.
type WasmRuntime struct {
	// CacheDir holds compiled modules across restarts (entries unused for
	// 30 days are pruned at start). Default: the user cache directory
	// (e.g. ~/.cache/sluice/wasm); "off" disables the on-disk cache.
	// Relative paths are relative to the config file's directory.
	CacheDir string `yaml:"cacheDir,omitempty" json:"cacheDir,omitempty"`
	// PoolSize is the number of instances per plugin. Default
	// min(GOMAXPROCS, 8).
	PoolSize int `yaml:"poolSize,omitempty" json:"poolSize,omitempty"`
	// MemoryLimitMiB caps each instance's linear memory; a guest that needs
	// more traps and its stream follows the plugin's failStrategy.
	// Default 1024.
	MemoryLimitMiB int `yaml:"memoryLimitMiB,omitempty" json:"memoryLimitMiB,omitempty"`
	// RecycleMemoryMiB replaces an instance whose linear memory grew past
	// it (it drains while a fresh one serves). Default 512.
	RecycleMemoryMiB int `yaml:"recycleMemoryMiB,omitempty" json:"recycleMemoryMiB,omitempty"`
	// Watchdog bounds each guest call; a call running longer kills its
	// instance. 0 (default) disables it; see docs/RATIONALE.md.
	Watchdog Duration `yaml:"watchdog,omitempty" json:"watchdog,omitempty"`
	// LoopGuard rewrites each module so that its loops return to the host
	// every 10,000 iterations: a guest stuck in a loop cannot freeze the
	// gateway, and a watchdog can end it. Default true. Turning it off
	// saves a counter decrement per loop iteration; do it only for fully
	// trusted plugins. A watchdog needs it and keeps it on.
	LoopGuard *bool `yaml:"loopGuard,omitempty" json:"loopGuard,omitempty"`
}

// Listener is one address the gateway accepts client traffic on.
type Listener struct {
	// Name identifies the listener in logs and metrics. Default "listener-<index>".
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Address is host:port. Port 0 picks a free port (tests).
	Address string `yaml:"address" json:"address"`
	// TLS, when set, serves HTTPS (HTTP/1.1 and h2 negotiated by ALPN).
	TLS *ListenerTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// HTTP2 enables HTTP/2: h2 over TLS, h2c (prior knowledge) on plain
	// listeners. Default true.
	HTTP2 *bool `yaml:"http2,omitempty" json:"http2,omitempty"`
}

// ListenerTLS names the certificate and key files of a TLS listener.
// Relative paths are relative to the config file's directory; a loaded
// configuration holds absolute paths.
type ListenerTLS struct {
	CertFile string `yaml:"certFile" json:"certFile"`
	KeyFile  string `yaml:"keyFile" json:"keyFile"`
}

// ServerTimeouts bound client connections.
type ServerTimeouts struct {
	// ReadHeader bounds reading the request headers. Default 10s.
	ReadHeader Duration `yaml:"readHeader,omitempty" json:"readHeader,omitempty"`
	// Idle bounds a keep-alive connection's idle time. Default 120s.
	Idle Duration `yaml:"idle,omitempty" json:"idle,omitempty"`
	// Request bounds a whole request, from its first byte to the last
	// byte of the response; 0 means no bound (the default: LLM streams are long).
	Request Duration `yaml:"request,omitempty" json:"request,omitempty"`
}

// Limits bound request sizes.
type Limits struct {
	// MaxHeaderBytes bounds the request line plus headers; larger → 431.
	// Default 65536.
	MaxHeaderBytes int `yaml:"maxHeaderBytes,omitempty" json:"maxHeaderBytes,omitempty"`
	// MaxRequestBodyBytes bounds a request body; larger → 413. 0 means the
	// default, 100 MiB; -1 means no limit.
	MaxRequestBodyBytes int64 `yaml:"maxRequestBodyBytes,omitempty" json:"maxRequestBodyBytes,omitempty"`
}

// Admin configures the admin listener.
type Admin struct {
	// Address is host:port. Default 127.0.0.1:9901 (loopback only).
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Disabled turns the admin listener off.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// BearerToken, when set, is required as "Authorization: Bearer <token>"
	// on every admin endpoint except /healthz.
	BearerToken string `yaml:"bearerToken,omitempty" json:"bearerToken,omitempty" sluice:"secret"`
}

// AccessLog configures the JSON access log.
type AccessLog struct {
	// Path is "stdout" (default), "stderr", "off", or a file path
	// (appended; relative to the config file's directory).
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
}

// Tracing configures OpenTelemetry tracing.
type Tracing struct {
	// Enabled turns tracing on. Default false.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Endpoint is the OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Headers are sent with every export (e.g. an API key). Redacted in dumps.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty" sluice:"secret"`
	// SampleRatio is the fraction of new traces sampled, 0..1. Default 1.
	SampleRatio *float64 `yaml:"sampleRatio,omitempty" json:"sampleRatio,omitempty"`
	// ServiceName is the service.name resource attribute. Default "sluice".
	ServiceName string `yaml:"serviceName,omitempty" json:"serviceName,omitempty"`
}

// Cluster is a named set of upstream endpoints.
type Cluster struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta  `yaml:"metadata" json:"metadata"`
	Spec     ClusterSpec `yaml:"spec" json:"spec"`
}

// Cluster types.
const (
	ClusterStatic = "static"
	ClusterDNS    = "dns"
	ClusterRedis  = "redis"
)

// Balancing policies.
const (
	BalanceRoundRobin   = "round_robin"
	BalanceLeastRequest = "least_request"
	BalanceRandom       = "random"
	BalanceWeighted     = "weighted"
)

// ClusterSpec is the body of a Cluster. The cluster's metadata.name is the
// name plugins use; it is also reachable as outbound|<port>||<name>.
type ClusterSpec struct {
	// Type is static (default: endpoints are used as written), dns
	// (host names re-resolved every DNSRefresh) or redis (a Redis server
	// for plugins' Redis calls; not routable).
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// Port is the port in the cluster's Envoy-style names. Default: the
	// first endpoint's port (80/443 for URLs without one; 6379 for an
	// embedded redis cluster without endpoints).
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// Endpoints are "host:port" or URLs ("https://api.openai.com").
	Endpoints []Endpoint `yaml:"endpoints,omitempty" json:"endpoints,omitempty"`
	// TLS configures upstream TLS. An https:// endpoint turns TLS on.
	TLS *UpstreamTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// ConnectTimeout bounds dialing an endpoint. Default 5s.
	ConnectTimeout Duration `yaml:"connectTimeout,omitempty" json:"connectTimeout,omitempty"`
	// RequestTimeout bounds the wait for the upstream's response headers
	// when the route sets no timeout. Default 60s.
	RequestTimeout Duration `yaml:"requestTimeout,omitempty" json:"requestTimeout,omitempty"`
	// Balancing is round_robin (default), least_request, random or weighted.
	Balancing string `yaml:"balancing,omitempty" json:"balancing,omitempty"`
	// HealthCheck, when set, probes endpoints over HTTP and ejects the
	// failing ones.
	HealthCheck *HealthCheck `yaml:"healthCheck,omitempty" json:"healthCheck,omitempty"`
	// Retries retries a request on another endpoint when connecting fails.
	Retries *Retries `yaml:"retries,omitempty" json:"retries,omitempty"`
	// DNSRefresh is how often a dns cluster re-resolves. Default 30s.
	DNSRefresh Duration `yaml:"dnsRefresh,omitempty" json:"dnsRefresh,omitempty"`
	// Redis holds credentials for a redis cluster.
	Redis *RedisOptions `yaml:"redis,omitempty" json:"redis,omitempty"`
}

// Endpoint is one upstream address.
type Endpoint struct {
	// Address is "host:port" or a URL with scheme http or https.
	Address string `yaml:"address" json:"address"`
	// Weight is used by the weighted policy. Default 1 when omitted; an
	// explicit 0 is kept and takes the endpoint out of weighted rotation.
	Weight int `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// UpstreamTLS configures TLS towards a cluster.
type UpstreamTLS struct {
	// SNI overrides the server name sent. Default: the endpoint host.
	SNI string `yaml:"sni,omitempty" json:"sni,omitempty"`
	// CAFile is a PEM bundle of trusted CAs, relative to the config file's
	// directory. Default: the system roots.
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty" json:"insecureSkipVerify,omitempty"`
}

// HealthCheck configures active HTTP health checking.
type HealthCheck struct {
	// Path is requested with GET. Default "/".
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Interval between probes of one endpoint. Default 10s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout of one probe. Default 2s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// UnhealthyThreshold consecutive failures eject an endpoint. Default 2.
	UnhealthyThreshold int `yaml:"unhealthyThreshold,omitempty" json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold consecutive successes bring it back. Default 1.
	HealthyThreshold int `yaml:"healthyThreshold,omitempty" json:"healthyThreshold,omitempty"`
	// ExpectedStatuses are the healthy status codes. Default 200-399.
	ExpectedStatuses []int `yaml:"expectedStatuses,omitempty" json:"expectedStatuses,omitempty"`
}

// Retries configures retries on connection failure. Only requests that
// never reached an upstream are retried, so no request is sent twice.
type Retries struct {
	// ConnectFailure is how many more endpoints to try after a failed
	// connect. Default 0.
	ConnectFailure int `yaml:"connectFailure,omitempty" json:"connectFailure,omitempty"`
}

// RedisOptions configures a redis cluster.
type RedisOptions struct {
	// Embedded serves this cluster from the in-process Redis-compatible
	// store instead of the endpoints (single-node default).
	Embedded bool   `yaml:"embedded,omitempty" json:"embedded,omitempty"`
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty" sluice:"secret"`
	DB       int    `yaml:"db,omitempty" json:"db,omitempty"`
}

// Route sends matching requests to a cluster.
type Route struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta `yaml:"metadata" json:"metadata"`
	Spec     RouteSpec  `yaml:"spec" json:"spec"`
}

// RouteSpec is the body of a Route. Its name (metadata.name, or
// namespace/name when a namespace is set) is the route_name plugins see.
type RouteSpec struct {
	// Hosts match the request authority (port ignored): exact names or
	// "*.example.com" wildcards. Empty matches every host.
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// Match selects requests by path, method and headers.
	Match RouteMatch `yaml:"match,omitempty" json:"match,omitempty"`
	// Cluster is the target cluster's name. Exactly one of Cluster and
	// WeightedClusters is set.
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	// WeightedClusters split traffic by weight.
	WeightedClusters []WeightedCluster `yaml:"weightedClusters,omitempty" json:"weightedClusters,omitempty"`
	// Rewrite changes the path or host sent upstream.
	Rewrite *Rewrite `yaml:"rewrite,omitempty" json:"rewrite,omitempty"`
	// Timeout bounds the wait for the upstream's response headers.
	// Default: the cluster's requestTimeout.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// RouteMatch selects requests. Every set condition must hold.
type RouteMatch struct {
	Path    *PathMatch    `yaml:"path,omitempty" json:"path,omitempty"`
	Methods []string      `yaml:"methods,omitempty" json:"methods,omitempty"`
	Headers []HeaderMatch `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// PathMatch matches the request path (without the query). Exactly one field is set.
type PathMatch struct {
	Exact  string `yaml:"exact,omitempty" json:"exact,omitempty"`
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Regex must match the whole path (RE2 syntax).
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
}

// HeaderMatch matches one request header. Exactly one of Exact, Regex and
// Present is set.
type HeaderMatch struct {
	Name  string `yaml:"name" json:"name"`
	Exact string `yaml:"exact,omitempty" json:"exact,omitempty"`
	// Regex must match the whole value (RE2 syntax).
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// Present true requires the header; false requires its absence.
	Present *bool `yaml:"present,omitempty" json:"present,omitempty"`
}

// WeightedCluster is one target of a traffic split.
type WeightedCluster struct {
	Cluster string `yaml:"cluster" json:"cluster"`
	Weight  int    `yaml:"weight" json:"weight"`
}

// Rewrite changes the request before it goes upstream.
type Rewrite struct {
	// PathPrefix replaces the matched path prefix (prefix matches only).
	PathPrefix string `yaml:"pathPrefix,omitempty" json:"pathPrefix,omitempty"`
	// Path replaces the whole path; the query is kept.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Host replaces the authority sent upstream.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
}
