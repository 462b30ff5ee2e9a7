package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicegw/sluice/internal/atomicfile"
)

// CacheDirEnv overrides the default plugin cache directory.
const CacheDirEnv = "SLUICE_PLUGIN_CACHE_DIR"

// DefaultCacheDir is $SLUICE_PLUGIN_CACHE_DIR, else <user cache
// dir>/sluice/plugins (~/.cache/sluice/plugins on Linux), else
// <temp dir>/sluice-plugins.
func DefaultCacheDir() string {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d
	}
	if base, err := os.UserCacheDir(); err == nil {
		return filepath.Join(base, "sluice", "plugins")
	}
	return filepath.Join(os.TempDir(), "sluice-plugins")
}

// diskCache stores downloaded modules by their sha256 and remembers what
// each URL resolved to:
//
//	<dir>/sha256/<hex>.wasm   a module, named by its own sha256
//	<dir>/refs/<hex>.json     sha256(url) -> refEntry
//
// Files are written to a temporary name and renamed, so concurrent
// gateways sharing a directory never read a partial file; a module whose
// contents no longer match its name is deleted and treated as missing.
type diskCache struct{ dir string }

// refEntry is what a URL resolved to when it was last fetched.
type refEntry struct {
	URL string `json:"url"`
	// SHA256 is the module's.
	SHA256 string `json:"sha256"`
	// Manifest is the image manifest's digest (oci:// only), and Resolved
	// what the tag resolved to (the index when there is one).
	Manifest string    `json:"manifest,omitempty"`
	Resolved string    `json:"resolved,omitempty"`
	Fetched  time.Time `json:"fetched"`
}

func (c diskCache) blobPath(sha string) string {
	return filepath.Join(c.dir, "sha256", sha+".wasm")
}

func (c diskCache) refPath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(sum[:])+".json")
}

// get returns the module with this sha256, verified.
func (c diskCache) get(sha string) ([]byte, bool) {
	if c.dir == "" || !isHex64(sha) {
		return nil, false
	}
	p := c.blobPath(sha)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	if sha256Hex(data) != sha {
		_ = os.Remove(p)
		return nil, false
	}
	return data, true
}

// put stores a module and returns its sha256.
func (c diskCache) put(data []byte) (string, error) {
	sha := sha256Hex(data)
	if c.dir == "" {
		return sha, nil
	}
	p := c.blobPath(sha)
	if st, err := os.Stat(p); err == nil && st.Size() == int64(len(data)) {
		return sha, nil
	}
	return sha, atomicfile.Write(p, data)
}

func (c diskCache) getRef(url string) (refEntry, bool) {
	if c.dir == "" {
		return refEntry{}, false
	}
	b, err := os.ReadFile(c.refPath(url))
	if err != nil {
		return refEntry{}, false
	}
	var e refEntry
	if json.Unmarshal(b, &e) != nil || e.URL != url || !isHex64(e.SHA256) {
		return refEntry{}, false
	}
	return e, true
}

func (c diskCache) putRef(e refEntry) error {
	if c.dir == "" {
		return nil
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(c.refPath(e.URL), b)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
