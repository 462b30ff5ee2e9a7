// Package pluginserver serves a directory of Proxy-Wasm plugins over
// HTTP, like Higress's plugin-server, for WasmPlugins with http:// URLs.
//
// Two layouts are recognised under the directory (anything else is
// ignored):
//
//	<name>/<version>/plugin.wasm  -> /plugins/<name>/<version>/plugin.wasm
//	<name>.wasm                   -> /plugins/<name>.wasm
//
// The first is Higress's plugin-server layout. GET / is an HTML list of
// the plugins and GET /index.json the same as JSON (name, version, path,
// url, size, sha256, modified). Modules are served with their sha256 as
// ETag and in X-Checksum-Sha256, and honour Range and conditional
// requests. The directory is scanned on every request, so plugins can be
// added and replaced while the server runs; checksums are cached by path,
// size and modification time.
package pluginserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// PathPrefix is where modules are served.
const PathPrefix = "/plugins/"

// Plugin is one served module.
type Plugin struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// Path is the URL path; URL the absolute URL as the request reached
	// the server.
	Path     string    `json:"path"`
	URL      string    `json:"url,omitempty"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Modified time.Time `json:"modified"`

	file string
}

// Index is the body of GET /index.json.
type Index struct {
	Plugins []Plugin `json:"plugins"`
}

// Server serves one directory. Safe for concurrent use.
type Server struct {
	dir    string
	logger *slog.Logger

	mu   sync.Mutex
	sums map[string]sumEntry
}

type sumEntry struct {
	size  int64
	mtime time.Time
	sum   string
}

// New returns a server for dir, which must be a directory.
func New(dir string, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Server{dir: abs, logger: logger, sums: map[string]sumEntry{}}, nil
}

// Dir is the served directory (absolute).
func (s *Server) Dir() string { return s.dir }

// Scan lists the plugins of the directory, sorted by name then version.
func (s *Server) Scan() ([]Plugin, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Plugin
	add := func(name, version, file, urlPath string) {
		p, err := s.describe(file)
		if err != nil {
			s.logger.Warn("skipping plugin file", "file", file, "error", err)
			return
		}
		p.Name, p.Version, p.Path = name, version, urlPath
		out = append(out, p)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(s.dir, name)
		if e.Type().IsRegular() && strings.HasSuffix(name, ".wasm") && len(name) > len(".wasm") {
			add(strings.TrimSuffix(name, ".wasm"), "", full, PathPrefix+name)
			continue
		}
		if !e.IsDir() {
			continue
		}
		versions, err := os.ReadDir(full)
		if err != nil {
			continue
		}
		for _, v := range versions {
			if !v.IsDir() || strings.HasPrefix(v.Name(), ".") {
				continue
			}
			file := filepath.Join(full, v.Name(), "plugin.wasm")
			if st, err := os.Stat(file); err == nil && st.Mode().IsRegular() {
				add(name, v.Name(), file, PathPrefix+name+"/"+v.Name()+"/plugin.wasm")
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

func (s *Server) describe(file string) (Plugin, error) {
	st, err := os.Stat(file)
	if err != nil {
		return Plugin{}, err
	}
	p := Plugin{Size: st.Size(), Modified: st.ModTime().UTC(), file: file}
	s.mu.Lock()
	c, ok := s.sums[file]
	s.mu.Unlock()
	if ok && c.size == st.Size() && c.mtime.Equal(st.ModTime()) {
		p.SHA256 = c.sum
		return p, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return Plugin{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Plugin{}, err
	}
	p.SHA256 = hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	s.sums[file] = sumEntry{size: st.Size(), mtime: st.ModTime(), sum: p.SHA256}
	s.mu.Unlock()
	return p, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveHTML)
	mux.HandleFunc("GET /index.json", s.serveJSON)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET "+PathPrefix, s.serveModule)
	return mux
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) ([]Plugin, bool) {
	ps, err := s.Scan()
	if err != nil {
		s.logger.Error("scanning the plugin directory", "dir", s.dir, "error", err)
		http.Error(w, "cannot read the plugin directory", http.StatusInternalServerError)
		return nil, false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	for i := range ps {
		ps[i].URL = scheme + "://" + r.Host + ps[i].Path
	}
	return ps, true
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	ps, ok := s.list(w, r)
	if !ok {
		return
	}
	if ps == nil {
		ps = []Plugin{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(Index{Plugins: ps})
}

var page = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sluice plugins</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}code{font-size:.85em}</style>
</head><body>
<h1>Plugins</h1>
{{if .}}<table>
<tr><th>Name</th><th>Version</th><th>Size</th><th>SHA-256</th><th>Modified</th></tr>
{{range .}}<tr><td><a href="{{.Path}}">{{.Name}}</a></td><td>{{.Version}}</td><td>{{.Size}}</td><td><code>{{.SHA256}}</code></td><td>{{.Modified.Format "2006-01-02 15:04:05Z"}}</td></tr>
{{end}}</table>{{else}}<p>No plugins. Lay them out as <code>NAME/VERSION/plugin.wasm</code> or <code>NAME.wasm</code>.</p>{{end}}
<p><a href="/index.json">index.json</a></p>
</body></html>
`))

func (s *Server) serveHTML(w http.ResponseWriter, r *http.Request) {
	ps, ok := s.list(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_ = page.Execute(w, ps)
}

func (s *Server) serveModule(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Scan()
	if err != nil {
		http.Error(w, "cannot read the plugin directory", http.StatusInternalServerError)
		return
	}
	for _, p := range ps {
		if p.Path != r.URL.Path {
			continue
		}
		f, err := os.Open(p.file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			http.Error(w, "cannot read the module", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/wasm")
		w.Header().Set("ETag", `"`+p.SHA256+`"`)
		w.Header().Set("X-Checksum-Sha256", p.SHA256)
		http.ServeContent(w, r, "", p.Modified, f)
		s.logger.Debug("served plugin", "path", p.Path, "remote", r.RemoteAddr)
		return
	}
	http.NotFound(w, r)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully:
// in-flight downloads get up to grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
