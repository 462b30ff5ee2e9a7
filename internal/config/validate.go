package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file checks the decoded resources: each field on its own, then the
// references between resources. Checks report by field path; the line
// comes from where the field was written (or its nearest written parent).
// Nothing here changes a resource: defaults are applied after every check
// passed (defaults.go), and checks that depend on a default use the same
// constants. This file holds what all kinds share; validate_<kind>.go the
// checks of each kind.

// validate checks every resource of set.
func validate(set *resources, f *findings) {
	if set.gateway != nil {
		s := scope{set: set, f: f, doc: set.gateway.doc}
		s.meta(set.gateway.obj.Metadata, nameK8s)
		s.gateway(&set.gateway.obj.Spec)
	}
	for _, r := range set.clusters {
		s := scope{set: set, f: f, doc: r.doc}
		s.meta(r.obj.Metadata, nameDNS)
		s.cluster(&r.obj.Spec)
	}
	for _, r := range set.routes {
		s := scope{set: set, f: f, doc: r.doc}
		s.meta(r.obj.Metadata, nameK8s)
		s.route(&r.obj.Spec)
	}
	for _, r := range set.plugins {
		s := scope{set: set, f: f, doc: r.doc}
		s.meta(r.obj.Metadata, nameK8s)
		s.plugin(&r.obj.Spec)
	}
}

// scope checks one document.
type scope struct {
	set *resources
	f   *findings
	doc *document
}

// err reports a problem at path, unless decoding already reported one there.
func (s scope) err(path, msg, hint string) {
	if !s.doc.shadowed(path) {
		s.f.err(s.doc.problem(path, msg, hint))
	}
}

// warn reports a non-fatal finding at path.
func (s scope) warn(path, msg, hint string) {
	if !s.doc.shadowed(path) {
		s.f.warn(s.doc.problem(path, msg, hint))
	}
}

// resolve makes a path in the configuration relative to the directory of
// the file that declared it. The result is still relative when the file
// was named by a relative path; defaults make it absolute.
func (s scope) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(s.doc.file), p)
}

// --- names ---

type nameStyle int

const (
	nameK8s nameStyle = iota // Kubernetes object name (DNS-1123 subdomain)
	nameDNS                  // DNS name: dot-separated labels of at most 63 characters
)

var (
	k8sNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	k8sLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

func (s scope) meta(m v1alpha1.ObjectMeta, style nameStyle) {
	switch {
	case m.Name == "":
		s.err("metadata.name", "a name is required", "every resource needs a name, unique per kind")
	case style == nameK8s && (len(m.Name) > 253 || !k8sNameRE.MatchString(m.Name)):
		s.err("metadata.name", fmt.Sprintf("name %q is not a valid name", m.Name),
			"use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters")
	case style == nameDNS && !validDNSName(m.Name):
		s.err("metadata.name", fmt.Sprintf("name %q is not a valid cluster name", m.Name),
			"use a DNS-style name: lowercase labels of letters, digits and '-' separated by dots, e.g. llm.dns or api.openai.com")
	}
	if m.Namespace != "" && (len(m.Namespace) > 63 || !k8sLabelRE.MatchString(m.Namespace)) {
		s.err("metadata.namespace", fmt.Sprintf("namespace %q is not valid", m.Namespace),
			"use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters")
	}
}

// validDNSName accepts lowercase DNS names: labels of 1-63 letters, digits
// and '-' (not at either end), joined by dots, 253 characters at most.
func validDNSName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for label := range strings.SplitSeq(n, ".") {
		if len(label) > 63 || !k8sLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

// validHostname accepts host names as resolvers do: labels of letters,
// digits, '-' and '_', an optional trailing dot.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return validHostname(h)
}

// --- addresses ---

// hostPort checks a "host:port" address. The host may be empty only when
// emptyHost is set; the port must be at least minPort.
func (s scope) hostPort(path, addr string, emptyHost bool, minPort int) (host string, port int, ok bool) {
	example := `write host:port, e.g. "127.0.0.1:8080" or "[::1]:8080"`
	if emptyHost {
		example = `write host:port, e.g. "127.0.0.1:8080", "[::1]:8080", or ":8080" for all interfaces`
	}
	if addr == "" {
		s.err(path, "address is required", example)
		return "", 0, false
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		hint := example
		if strings.Contains(addr, "://") {
			hint = "write host:port without a scheme"
		}
		s.err(path, showAddr(addr)+" is not a host:port address", hint)
		return "", 0, false
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < minPort || port > 65535 {
		s.err(path, fmt.Sprintf("port %q in %s is not a number from %d to 65535", portText, showAddr(addr), minPort), "")
		return "", 0, false
	}
	switch {
	case host == "" && !emptyHost:
		s.err(path, showAddr(addr)+" has no host", example)
		return "", 0, false
	case host != "" && !validHost(host):
		s.err(path, fmt.Sprintf("host %s in %s is neither an IP address nor a valid host name", showAddr(host), showAddr(addr)), "")
		return "", 0, false
	}
	return host, port, true
}

// unspecifiedHost reports whether a listen host means every interface.
func unspecifiedHost(h string) bool {
	if h == "" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsUnspecified()
}

// bound is an address a listener binds.
type bound struct {
	host string
	port int
	what string // for messages: `listener "public"`
}

// overlaps reports whether two listen addresses cannot both be bound.
func (b bound) overlaps(host string, port int) bool {
	if b.port == 0 || port == 0 || b.port != port {
		return false
	}
	return b.host == host || unspecifiedHost(b.host) || unspecifiedHost(host)
}

// showURL quotes a URL for a message, with any password hidden.
func showURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return strconv.Quote(u.Redacted())
	}
	return showAddr(raw)
}

// showAddr quotes an address for a message. Whatever precedes an '@' may
// be credentials ("user:password@host") and is hidden.
func showAddr(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		scheme := ""
		if j := strings.Index(a[:i], "://"); j >= 0 {
			scheme = a[:j+3]
		}
		a = scheme + "xxxxx" + a[i:]
	}
	return strconv.Quote(a)
}

// httpURL checks an absolute http(s) URL with a host.
func (s scope) httpURL(path, raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.err(path, showURL(raw)+" is not an http:// or https:// URL with a host", "")
		return nil, false
	}
	return u, true
}

// --- files ---

// readableFile checks that a configured file exists and can be read. It
// returns the resolved path, or "" after reporting a problem.
func (s scope) readableFile(path, p string) string {
	resolved := s.resolve(p)
	where := ""
	if resolved != p {
		where = "looked for " + resolved + ": relative paths are read from the config file's directory"
	}
	info, err := os.Stat(resolved)
	if err != nil {
		if os.IsNotExist(err) {
			s.err(path, fmt.Sprintf("file %q does not exist", p), where)
		} else {
			s.err(path, fmt.Sprintf("file %q cannot be read: %s", p, pathErrorText(err)), where)
		}
		return ""
	}
	if info.IsDir() {
		s.err(path, fmt.Sprintf("%q is a directory, not a file", p), where)
		return ""
	}
	fh, err := os.Open(resolved)
	if err != nil {
		s.err(path, fmt.Sprintf("file %q cannot be read: %s", p, pathErrorText(err)), where)
		return ""
	}
	fh.Close()
	return resolved
}
