package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthz answers liveness probes: the process is up and serving.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}

// readyz answers readiness probes from Options.Ready: 200 when ready, 503
// with the reasons otherwise.
func (s *Server) readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ok, details := true, []string(nil)
		if s.opts.Ready != nil {
			ok, details = s.opts.Ready()
		}
		if ok {
			writeJSON(w, http.StatusOK, struct {
				Status  string   `json:"status"`
				Details []string `json:"details,omitempty"`
			}{"ready", details})
			return
		}
		if details == nil {
			details = []string{}
		}
		writeJSON(w, http.StatusServiceUnavailable, struct {
			Status  string   `json:"status"`
			Details []string `json:"details"`
		}{"not ready", details})
	})
}

// metrics serves Options.Gatherer in the Prometheus text format. A collector
// that fails does not hide the others: its error is logged and the rest is
// served.
func (s *Server) metrics() http.Handler {
	return promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// configDump serves Options.ConfigDump as JSON indented by two spaces.
func (s *Server) configDump() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.opts.ConfigDump()); err != nil {
			s.log.Error("admin config dump", "err", err)
			writeError(w, http.StatusInternalServerError, "config dump: "+err.Error())
			return
		}
		setJSONHeaders(w)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	})
}

// probeMethods are the methods tried to tell "wrong method" (405) from "no
// such endpoint" (404).
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// notFound handles every request no endpoint matched: 405 with an Allow
// header when the path exists under other methods, 404 otherwise, both with
// a JSON body. (ServeMux's own answers are plain text.)
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range probeMethods {
		probe := new(http.Request)
		*probe = *r
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return
	}
	writeError(w, http.StatusNotFound, "no admin endpoint at "+r.URL.Path)
}

// writeError writes {"error": msg} with the given status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// writeJSON writes v as a one-line JSON body. v is always one of this
// package's small response structs, which cannot fail to encode.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	setJSONHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func setJSONHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}
