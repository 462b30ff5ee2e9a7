package plugins

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// fetchHTTP downloads an http(s):// module. With a sha256 the cache is
// consulted first and a hit never touches the network; without one the
// module is downloaded on every load (there is nothing to tell a changed
// file from an unchanged one).
func (f *Fetcher) fetchHTTP(ctx context.Context, u *url.URL, wantSHA string) ([]byte, error) {
	shown := u.Redacted()
	if wantSHA != "" {
		if data, ok := f.cache().get(wantSHA); ok {
			f.logger().Debug("plugin cache hit", "url", shown, "sha256", wantSHA)
			return data, nil
		}
	}
	if err := mayFetch(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", shown, err)
	}
	req.Header.Set("Accept", "application/wasm, application/octet-stream;q=0.9, */*;q=0.1")
	req.Header.Set("User-Agent", "sluice-plugin-fetcher")
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return nil, networkError("server", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &HTTPStatusError{URL: shown, Status: resp.Status, Code: resp.StatusCode}
	}
	max := f.maxBytes()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, networkError("server", shown, fmt.Errorf("GET %s: reading the body: %w", shown, err))
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("GET %s: the module is larger than %d bytes", shown, max)
	}
	if err := checkSHA(data, wantSHA); err != nil {
		err.(*DigestMismatchError).URL = shown
		return nil, err
	}
	f.store(data, nil)
	f.logger().Info("plugin downloaded", "url", shown, "bytes", len(data), "sha256", sha256Hex(data)[:12])
	return data, nil
}
