package config

import (
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file checks a WasmPlugin: url, digests, enums, env and match rules.

var (
	phases         = []string{v1alpha1.PhaseAuthn, v1alpha1.PhaseAuthz, v1alpha1.PhaseStats, v1alpha1.PhaseUnspecified}
	failStrategies = []string{v1alpha1.FailClose, v1alpha1.FailOpen}
	pullPolicies   = []string{v1alpha1.PullUnspecified, v1alpha1.PullIfNotPresent, v1alpha1.PullAlways}
	envSources     = []string{v1alpha1.EnvInline, v1alpha1.EnvHost}
	routeTypes     = []string{routeHTTP, "GRPC"}
	wasmURLSchemes = []string{"oci", "file", "http", "https", "builtin"}
)

const hexDigestLength = 64

func (s scope) plugin(p *v1alpha1.WasmPluginSpec) {
	ref := s.pluginURL(p.URL)

	if p.SHA256 != "" {
		if !isHexDigest(p.SHA256) {
			s.err("spec.sha256", "must be 64 hexadecimal characters (a SHA-256 digest)", "")
		} else if ref.digest != "" && !strings.EqualFold(ref.digest, p.SHA256) {
			s.err("spec.sha256", "does not match the @sha256: digest in url", "remove one of them, or make them agree")
		}
	}

	if v := p.ImagePullPolicy; v != "" {
		if !slices.Contains(pullPolicies, v) {
			s.err("spec.imagePullPolicy", fmt.Sprintf("unknown image pull policy %q", v), oneOf(v, pullPolicies))
		} else if ref.scheme != "" && ref.scheme != "oci" {
			s.warn("spec.imagePullPolicy", "imagePullPolicy applies only to oci:// images", "remove it")
		}
	}
	if v := p.Phase; v != "" && !slices.Contains(phases, v) {
		s.err("spec.phase", fmt.Sprintf("unknown phase %q", v), oneOf(v, phases))
	}
	if v := p.FailStrategy; v != "" && !slices.Contains(failStrategies, v) {
		s.err("spec.failStrategy", fmt.Sprintf("unknown fail strategy %q", v), oneOf(v, failStrategies))
	}
	if p.VerificationKey != "" {
		if b, _ := pem.Decode([]byte(p.VerificationKey)); b == nil {
			s.err("spec.verificationKey", "is not a PEM-encoded public key", "paste the key including its -----BEGIN PUBLIC KEY----- line")
		}
	}
	if p.ImagePullSecret != "" {
		if _, err := os.Stat(s.resolve(p.ImagePullSecret)); err != nil {
			s.warn("spec.imagePullSecret", fmt.Sprintf("%q is not a readable file, so images are pulled without credentials", p.ImagePullSecret),
				"a standalone gateway reads a Docker config file here, not a Kubernetes Secret")
		}
	}

	if p.VMConfig != nil {
		names := map[string]int{}
		for i, e := range p.VMConfig.Env {
			ep := fmt.Sprintf("spec.vmConfig.env[%d]", i)
			switch {
			case e.Name == "":
				s.err(ep+".name", "name is required", "")
			case strings.ContainsAny(e.Name, "=\x00"):
				s.err(ep+".name", fmt.Sprintf("%q is not a valid environment variable name", e.Name), "a name cannot contain '='")
			default:
				if j, dup := names[e.Name]; dup {
					s.err(ep+".name", fmt.Sprintf("%q is set twice (also spec.vmConfig.env[%d])", e.Name, j), "")
				}
				names[e.Name] = i
			}
			if e.ValueFrom != "" && !slices.Contains(envSources, e.ValueFrom) {
				s.err(ep+".valueFrom", fmt.Sprintf("unknown value source %q", e.ValueFrom), oneOf(e.ValueFrom, envSources))
			}
			if e.ValueFrom == v1alpha1.EnvHost && e.Value != "" {
				s.warn(ep+".value", "value is ignored with valueFrom: HOST", "the value is copied from the gateway's environment")
			}
		}
	}

	for i, r := range p.MatchRules {
		s.matchRule(fmt.Sprintf("spec.matchRules[%d]", i), r)
	}

	if p.PluginConfig != nil && (p.DefaultConfig != nil || len(p.MatchRules) > 0 || p.DefaultConfigDisable) {
		s.warn("spec.pluginConfig", "defaultConfig, defaultConfigDisable and matchRules are ignored because pluginConfig is set",
			"use pluginConfig alone, or move it into defaultConfig")
	}
	if p.PluginConfig == nil && p.DefaultConfigDisable && len(p.MatchRules) == 0 {
		s.warn("spec.defaultConfigDisable", "the plugin never applies: its default configuration is disabled and it has no matchRules",
			"add matchRules, or remove defaultConfigDisable")
	}
	if p.Selector != nil {
		s.warn("spec.selector", "selector is ignored by a standalone gateway",
			"every WasmPlugin applies to every route; scope it with matchRules")
	}
	if p.TargetRefs != nil {
		s.warn("spec.targetRefs", "targetRefs is ignored by a standalone gateway",
			"every WasmPlugin applies to every route; scope it with matchRules")
	}
}

// wasmRef is what the plugin URL says.
type wasmRef struct {
	scheme string // oci, file, http, https; "" when invalid
	tag    string // oci tag, "" when absent
	digest string // hex from "@sha256:", "" when absent
}

// splitScheme splits "scheme://rest"; a URL without a scheme is an OCI
// reference.
func splitScheme(u string) (scheme, rest string) {
	if s, r, ok := strings.Cut(u, "://"); ok {
		return s, r
	}
	return "oci", u
}

// ociTagDigest splits an OCI reference "registry/repo:tag@sha256:hex".
func ociTagDigest(ref string) (tag, digest string, hasDigest bool) {
	ref, dig, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		digest = dig
	}
	last := ref[strings.LastIndexByte(ref, '/')+1:]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		tag = last[i+1:]
	}
	return tag, digest, hasDigest
}

var builtinNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

var ociTagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func (s scope) pluginURL(raw string) wasmRef {
	const p = "spec.url"
	if raw == "" {
		s.err(p, "url is required", `e.g. "oci://ghcr.io/org/plugin:1.0.0" or "file://plugins/plugin.wasm"`)
		return wasmRef{}
	}
	scheme, rest := splitScheme(raw)
	switch scheme {
	case "oci":
		if rest == "" || strings.ContainsAny(rest, " \t\r\n") || strings.HasPrefix(rest, "/") {
			s.err(p, showURL(raw)+" is not a valid OCI reference", `write registry/repository:tag, e.g. "oci://ghcr.io/org/plugin:1.0.0"`)
			return wasmRef{}
		}
		tag, digest, hasDigest := ociTagDigest(rest)
		if tag != "" && !ociTagRE.MatchString(tag) {
			s.err(p, fmt.Sprintf("OCI tag %q is not valid", tag), "a tag has letters, digits, '_', '.' and '-', at most 128 characters")
		}
		if hasDigest {
			hexPart, ok := strings.CutPrefix(digest, "sha256:")
			if !ok || !isHexDigest(hexPart) {
				s.err(p, "the digest after @ must be sha256: followed by 64 hexadecimal characters", "")
				return wasmRef{scheme: scheme, tag: tag}
			}
			return wasmRef{scheme: scheme, tag: tag, digest: hexPart}
		}
		return wasmRef{scheme: scheme, tag: tag}
	case "file":
		if rest == "" {
			s.err(p, "file:// URL has no path", `e.g. "file:///opt/plugins/plugin.wasm", or "file://plugins/plugin.wasm" relative to this file`)
			return wasmRef{}
		}
		path := s.resolve(rest)
		if info, err := os.Stat(path); err != nil || info.IsDir() {
			s.warn(p, fmt.Sprintf("module file %q does not exist yet", path),
				"the plugin fails to load until it does; relative file:// paths are read from the config file's directory")
		}
		return wasmRef{scheme: scheme}
	case "http", "https":
		if _, ok := s.httpURL(p, raw); !ok {
			return wasmRef{}
		}
		return wasmRef{scheme: scheme}
	case "builtin":
		if !builtinNameRE.MatchString(rest) {
			s.err(p, showURL(raw)+" is not a built-in plugin name", `write builtin://NAME with NAME a plugin folder under plugins/, e.g. "builtin://ai-prompt-decorator"`)
			return wasmRef{}
		}
		return wasmRef{scheme: scheme}
	}
	s.err(p, fmt.Sprintf("unsupported URL scheme %q", scheme), hintJoin(didYouMean(scheme, wasmURLSchemes), "use oci://, file://, http://, https:// or builtin://"))
	return wasmRef{}
}

func isHexDigest(h string) bool {
	if len(h) != hexDigestLength {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func (s scope) matchRule(p string, r v1alpha1.MatchRule) {
	if len(r.Ingress) == 0 && len(r.Domain) == 0 && len(r.Service) == 0 {
		s.err(p, "a match rule needs at least one of ingress, domain or service",
			"Higress silently ignores a WasmPlugin with such a rule; Sluice rejects it so the mistake shows")
	}
	if r.RouteType != "" && !slices.Contains(routeTypes, r.RouteType) {
		s.err(p+".routeType", fmt.Sprintf("unknown route type %q", r.RouteType), oneOf(r.RouteType, routeTypes))
	}
	for i, name := range r.Ingress {
		ip := fmt.Sprintf("%s.ingress[%d]", p, i)
		if name == "" {
			s.err(ip, "route name is empty", "")
			continue
		}
		if s.set.complete {
			if _, ok := s.set.routeByName[name]; !ok {
				var names []string
				suggest := ""
				for _, rt := range s.set.routes {
					names = append(names, RouteName(rt.obj))
					if rt.obj.Metadata.Name == name && suggest == "" {
						suggest = fmt.Sprintf("did you mean %q?", RouteName(rt.obj))
					}
				}
				if suggest == "" {
					suggest = didYouMean(name, names)
				}
				s.warn(ip, fmt.Sprintf("route %q does not exist, so this rule never matches it", name),
					hintJoin(suggest, "routes are named metadata.name, or namespace/name when a namespace is set"))
			}
		}
	}
	for i, d := range r.Domain {
		if d == "" {
			s.err(fmt.Sprintf("%s.domain[%d]", p, i), "domain is empty", `e.g. "api.example.com", "*.example.com" or "api*"`)
		}
	}
	for i, svc := range r.Service {
		if svc == "" {
			s.err(fmt.Sprintf("%s.service[%d]", p, i), "service is empty", `a cluster name, "fqdn" or "fqdn:port"`)
		}
	}
}
