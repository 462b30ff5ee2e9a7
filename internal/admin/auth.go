package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// requireToken wraps h so that it runs only for requests carrying
// "Authorization: Bearer <token>" with the configured token; others get 401
// with a JSON error. With no token configured it returns h unchanged.
//
// Both tokens are hashed before the constant-time comparison so that neither
// the content nor the length of the configured token shows in the timing.
// Neither the configured nor the presented token is ever logged.
func (s *Server) requireToken(h http.Handler) http.Handler {
	if s.opts.BearerToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.opts.BearerToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.log.Debug("admin request without bearer token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-admin"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token (send Authorization: Bearer <token>)")
			return
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.log.Warn("admin request with a wrong bearer token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-admin", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearerToken extracts the token from an Authorization header value. The
// scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
