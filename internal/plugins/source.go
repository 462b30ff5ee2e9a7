package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// This file reads the local sources: file:// and builtin://. The network
// sources and the cache are in fetcher.go, fetch_http.go and fetch_oci.go.

// readLocal reads a file:// or builtin:// module. file:// URLs are
// absolute (internal/config resolves relative paths).
func readLocal(u *url.URL) ([]byte, error) {
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = u.Host + u.Path
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read module: %w", err)
		}
		return data, nil
	case "builtin":
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("url %q: builtin://NAME takes no path", u.String())
		}
		p, err := BuiltinPath(u.Host)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read module: %w", err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("url %q: unsupported scheme %q", u.String(), u.Scheme)
}

// sha256Hex is the lowercase hex SHA-256 of data.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkSHA verifies a module against the configured checksum ("" accepts
// anything).
func checkSHA(data []byte, want string) error {
	if want == "" {
		return nil
	}
	if got := sha256Hex(data); !strings.EqualFold(got, want) {
		return &DigestMismatchError{Expected: strings.ToLower(want), Got: got}
	}
	return nil
}

// DigestMismatchError is a module (or image) whose checksum is not the
// configured one.
type DigestMismatchError struct {
	URL      string
	Expected string // the configured sha256
	Got      string // the module's sha256
	// Manifest is the image manifest digest, for oci:// sources.
	Manifest string
}

func (e *DigestMismatchError) Error() string {
	var b strings.Builder
	b.WriteString("sha256 mismatch")
	if e.URL != "" {
		b.WriteString(" for " + e.URL)
	}
	fmt.Fprintf(&b, ": the configuration expects %s, got %s", e.Expected, e.Got)
	if e.Manifest != "" {
		fmt.Fprintf(&b, " (a module in image %s; spec.sha256 may be the module's or the image manifest's digest)", e.Manifest)
	}
	return b.String()
}
