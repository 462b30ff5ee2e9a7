package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// fetch reads a module from its URL and verifies its sha256 when given.
// file:// URLs are absolute (internal/config resolves relative paths).
func fetch(rawURL, wantSHA string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", rawURL, err)
	}
	var data []byte
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = u.Host + u.Path
		}
		data, err = os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read module: %w", err)
		}
	case "builtin":
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("url %q: builtin://NAME takes no path", rawURL)
		}
		p, err := BuiltinPath(u.Host)
		if err != nil {
			return nil, err
		}
		if data, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("read module: %w", err)
		}
	case "http", "https", "oci":
		return nil, fmt.Errorf("%s:// plugin sources are not supported by this build yet (use file://)", u.Scheme)
	default:
		return nil, fmt.Errorf("url %q: unsupported scheme %q", rawURL, u.Scheme)
	}
	if wantSHA != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, wantSHA) {
			return nil, fmt.Errorf("sha256 mismatch: the module is %s, the configuration expects %s", got, strings.ToLower(wantSHA))
		}
	}
	return data, nil
}
