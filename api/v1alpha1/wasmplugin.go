package v1alpha1

// WasmPlugin is Higress's plugin resource (extensions.higress.io/v1alpha1),
// field for field. Sluice applies every WasmPlugin to every route; scoping
// to routes, domains and services happens inside the plugin through the
// _rules_ of its configuration, exactly as in Higress.
type WasmPlugin struct {
	TypeMeta `yaml:",inline" json:",inline"`
	Metadata ObjectMeta     `yaml:"metadata" json:"metadata"`
	Spec     WasmPluginSpec `yaml:"spec" json:"spec"`
}

// Plugin phases, in request order.
const (
	PhaseAuthn       = "AUTHN"
	PhaseAuthz       = "AUTHZ"
	PhaseStats       = "STATS"
	PhaseUnspecified = "UNSPECIFIED_PHASE"
)

// Fail strategies.
const (
	FailClose = "FAIL_CLOSE"
	FailOpen  = "FAIL_OPEN"
)

// Image pull policies.
const (
	PullUnspecified  = "UNSPECIFIED_POLICY"
	PullIfNotPresent = "IfNotPresent"
	PullAlways       = "Always"
)

// WasmPluginSpec is the body of a WasmPlugin.
type WasmPluginSpec struct {
	// URL locates the module: oci://registry/repo:tag (the default scheme),
	// file:///path (relative paths are relative to the config file), or
	// http(s)://.
	URL string `yaml:"url" json:"url"`
	// SHA256 is the module's (or image's) checksum, hex.
	SHA256 string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
	// ImagePullPolicy applies to OCI tags: IfNotPresent (default) or Always
	// (the default for :latest or no tag, when the URL has no digest).
	ImagePullPolicy string `yaml:"imagePullPolicy,omitempty" json:"imagePullPolicy,omitempty"`
	// ImagePullSecret names a Docker config file used to pull OCI images
	// (relative to the config file's directory).
	ImagePullSecret string `yaml:"imagePullSecret,omitempty" json:"imagePullSecret,omitempty"`
	// VerificationKey is a PEM public key for signed modules.
	VerificationKey string `yaml:"verificationKey,omitempty" json:"verificationKey,omitempty"`
	// PluginConfig is the raw configuration; when set, DefaultConfig and
	// MatchRules are ignored.
	PluginConfig map[string]any `yaml:"pluginConfig,omitempty" json:"pluginConfig,omitempty"`
	// PluginName is the root id (plugin_root_id) handed to the plugin.
	PluginName string `yaml:"pluginName,omitempty" json:"pluginName,omitempty"`
	// Phase is AUTHN, AUTHZ, STATS or UNSPECIFIED_PHASE (default).
	Phase string `yaml:"phase,omitempty" json:"phase,omitempty"`
	// Priority orders plugins inside a phase, highest first. Unset sorts
	// after every plugin with a priority.
	Priority *int32 `yaml:"priority,omitempty" json:"priority,omitempty"`
	// FailStrategy is FAIL_CLOSE (default) or FAIL_OPEN.
	FailStrategy string `yaml:"failStrategy,omitempty" json:"failStrategy,omitempty"`
	// VMConfig sets the plugin VM's environment.
	VMConfig *VMConfig `yaml:"vmConfig,omitempty" json:"vmConfig,omitempty"`
	// DefaultConfig is the global configuration.
	DefaultConfig map[string]any `yaml:"defaultConfig,omitempty" json:"defaultConfig,omitempty"`
	// DefaultConfigDisable drops the global configuration: the plugin acts
	// only where a match rule applies.
	DefaultConfigDisable bool `yaml:"defaultConfigDisable,omitempty" json:"defaultConfigDisable,omitempty"`
	// MatchRules scope configurations to routes, domains or services.
	MatchRules []MatchRule `yaml:"matchRules,omitempty" json:"matchRules,omitempty"`
	// Selector and TargetRefs are accepted so Kubernetes manifests load
	// unchanged; a standalone gateway ignores them (with a warning).
	Selector   map[string]any   `yaml:"selector,omitempty" json:"selector,omitempty"`
	TargetRefs []map[string]any `yaml:"targetRefs,omitempty" json:"targetRefs,omitempty"`
}

// VMConfig is the plugin VM's configuration.
type VMConfig struct {
	Env []EnvVar `yaml:"env,omitempty" json:"env,omitempty"`
}

// Env value sources.
const (
	EnvInline = "INLINE"
	EnvHost   = "HOST"
)

// EnvVar is one environment variable of the plugin VM.
type EnvVar struct {
	Name string `yaml:"name" json:"name"`
	// ValueFrom is INLINE (default: Value is used) or HOST (copied from the
	// gateway process's environment).
	ValueFrom string `yaml:"valueFrom,omitempty" json:"valueFrom,omitempty"`
	Value     string `yaml:"value,omitempty" json:"value,omitempty"`
}

// MatchRule scopes a configuration. At least one of Ingress, Domain and
// Service is set.
type MatchRule struct {
	// Ingress lists route names (route_name).
	Ingress []string `yaml:"ingress,omitempty" json:"ingress,omitempty"`
	// Domain lists host patterns: exact, "*.example.com" or "prefix*".
	Domain []string `yaml:"domain,omitempty" json:"domain,omitempty"`
	// Service lists cluster names, "fqdn" or "fqdn:port".
	Service []string `yaml:"service,omitempty" json:"service,omitempty"`
	// Config is this rule's configuration.
	Config map[string]any `yaml:"config,omitempty" json:"config,omitempty"`
	// ConfigDisable turns the plugin off where this rule matches.
	ConfigDisable bool `yaml:"configDisable,omitempty" json:"configDisable,omitempty"`
	// RouteType is HTTP (default) or GRPC.
	RouteType string `yaml:"routeType,omitempty" json:"routeType,omitempty"`
}
