package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const token = "s3cret-admin-token"

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a server on 127.0.0.1:0 and stops it when the test ends.
func start(t *testing.T, opts Options, extra map[string]http.Handler) *Server {
	t.Helper()
	opts.Address = "127.0.0.1:0"
	s := New(opts)
	for p, h := range extra {
		s.Handle(p, h)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, s *Server, method, path, authorization string) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func newGatherer(t *testing.T) prometheus.Gatherer {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_widgets_total", Help: "Widgets."})
	reg.MustRegister(c)
	c.Add(3)
	return reg
}

func TestEndpointsAndAuth(t *testing.T) {
	logs := &syncBuffer{}
	reload := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"reloaded":true}`)
	})
	opts := Options{
		BearerToken: token,
		Gatherer:    newGatherer(t),
		Ready:       func() (bool, []string) { return true, nil },
		ConfigDump:  func() any { return map[string]string{"apiKey": "<redacted>"} },
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	s := start(t, opts, map[string]http.Handler{"POST /reload": reload})

	const (
		none  = ""
		right = "Bearer " + token
		wrong = "Bearer not-the-token"
	)
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
		wantBody   string // substring
	}{
		{"healthz without token", "GET", "/healthz", none, 200, `{"status":"ok"}`},
		{"healthz with wrong token", "GET", "/healthz", wrong, 200, `{"status":"ok"}`},
		{"healthz with token", "GET", "/healthz", right, 200, `{"status":"ok"}`},
		{"healthz HEAD", "HEAD", "/healthz", none, 200, ""},

		{"readyz without token", "GET", "/readyz", none, 401, `"error":"missing bearer token`},
		{"readyz with wrong token", "GET", "/readyz", wrong, 401, `"error":"invalid bearer token"`},
		{"readyz with token", "GET", "/readyz", right, 200, `{"status":"ready"}`},
		{"readyz lowercase scheme", "GET", "/readyz", "bearer " + token, 200, `{"status":"ready"}`},
		{"readyz basic auth", "GET", "/readyz", "Basic " + token, 401, `missing bearer token`},
		{"readyz empty bearer", "GET", "/readyz", "Bearer ", 401, `missing bearer token`},
		{"readyz token prefix", "GET", "/readyz", "Bearer " + token[:5], 401, `invalid bearer token`},
		{"readyz token with suffix", "GET", "/readyz", right + "x", 401, `invalid bearer token`},

		{"metrics without token", "GET", "/metrics", none, 401, `"error"`},
		{"metrics with wrong token", "GET", "/metrics", wrong, 401, `"error"`},
		{"metrics with token", "GET", "/metrics", right, 200, "sluice_test_widgets_total 3"},

		{"config_dump without token", "GET", "/config_dump", none, 401, `"error"`},
		{"config_dump with wrong token", "GET", "/config_dump", wrong, 401, `"error"`},
		{"config_dump with token", "GET", "/config_dump", right, 200, `"apiKey": "<redacted>"`},

		{"added endpoint without token", "POST", "/reload", none, 401, `"error"`},
		{"added endpoint with wrong token", "POST", "/reload", wrong, 401, `"error"`},
		{"added endpoint with token", "POST", "/reload", right, 200, `{"reloaded":true}`},

		{"unknown path without token", "GET", "/nope", none, 401, `"error"`},
		{"unknown path with token", "GET", "/nope", right, 404, `{"error":"no admin endpoint at /nope"}`},
		{"wrong method on readyz", "POST", "/readyz", right, 405, `"error":"method POST not allowed on /readyz"`},
		{"wrong method on reload", "GET", "/reload", right, 405, `"error"`},
		{"wrong method on healthz", "DELETE", "/healthz", right, 405, `"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.method, tt.path, tt.auth)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if !bytes.Contains(r.body, []byte(tt.wantBody)) {
				t.Errorf("body %q does not contain %q", r.body, tt.wantBody)
			}
			if bytes.Contains(r.body, []byte(token)) {
				t.Errorf("body leaks the token: %s", r.body)
			}
			switch r.status {
			case 401:
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
				fallthrough
			case 404, 405:
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("content-type = %q, want application/json", ct)
				}
				if !json.Valid(r.body) {
					t.Errorf("error body is not JSON: %q", r.body)
				}
			}
			if r.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}

	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "not-the-token") {
		t.Errorf("logs contain a bearer token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "wrong bearer token") {
		t.Errorf("rejected token not logged at all:\n%s", logs.String())
	}
}

func TestAllowHeader(t *testing.T) {
	s := start(t, Options{}, map[string]http.Handler{
		"POST /reload":   http.NotFoundHandler(),
		"DELETE /reload": http.NotFoundHandler(),
	})
	tests := []struct {
		name, method, path, want string
	}{
		{"GET endpoint", "POST", "/healthz", "GET, HEAD"},
		{"two methods", "GET", "/reload", "DELETE, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, tt.method, tt.path, "")
			if r.status != 405 || r.header.Get("Allow") != tt.want {
				t.Errorf("status %d Allow %q, want 405 %q", r.status, r.header.Get("Allow"), tt.want)
			}
		})
	}
}

func TestNoTokenConfigured(t *testing.T) {
	s := start(t, Options{Gatherer: newGatherer(t), ConfigDump: func() any { return struct{}{} }}, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/config_dump"} {
		t.Run(path, func(t *testing.T) {
			if r := do(t, s, "GET", path, ""); r.status != 200 {
				t.Errorf("status = %d, want 200: %s", r.status, r.body)
			}
		})
	}
}

func TestOptionalEndpointsAbsent(t *testing.T) {
	s := start(t, Options{}, nil)
	for _, path := range []string{"/metrics", "/config_dump"} {
		t.Run(path, func(t *testing.T) {
			if r := do(t, s, "GET", path, ""); r.status != 404 {
				t.Errorf("status = %d, want 404 when the option is nil", r.status)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name        string
		ready       func() (bool, []string)
		wantStatus  int
		wantState   string
		wantDetails []string // nil: field absent
	}{
		{"nil func is ready", nil, 200, "ready", nil},
		{"ready", func() (bool, []string) { return true, nil }, 200, "ready", nil},
		{"ready with notes", func() (bool, []string) { return true, []string{"plugin cache warming"} }, 200, "ready", []string{"plugin cache warming"}},
		{"not ready with details", func() (bool, []string) {
			return false, []string{"cluster openai: no healthy endpoint", "plugin ai-cache: compiling"}
		}, 503, "not ready", []string{"cluster openai: no healthy endpoint", "plugin ai-cache: compiling"}},
		{"not ready without details", func() (bool, []string) { return false, nil }, 503, "not ready", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Options{Ready: tt.ready}, nil)
			r := do(t, s, "GET", "/readyz", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", r.status, tt.wantStatus)
			}
			var got struct {
				Status  string    `json:"status"`
				Details *[]string `json:"details"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%v: %s", err, r.body)
			}
			if got.Status != tt.wantState {
				t.Errorf("status field = %q, want %q", got.Status, tt.wantState)
			}
			switch {
			case tt.wantDetails == nil && got.Details != nil:
				t.Errorf("details = %v, want absent", *got.Details)
			case tt.wantDetails != nil && got.Details == nil:
				t.Errorf("details absent, want %q", tt.wantDetails)
			case tt.wantDetails != nil && strings.Join(*got.Details, "|") != strings.Join(tt.wantDetails, "|"):
				t.Errorf("details = %q, want %q", *got.Details, tt.wantDetails)
			}
		})
	}
}

func TestReadinessFollowsState(t *testing.T) {
	var mu sync.Mutex
	ready := false
	s := start(t, Options{Ready: func() (bool, []string) {
		mu.Lock()
		defer mu.Unlock()
		return ready, []string{"starting"}
	}}, nil)
	if r := do(t, s, "GET", "/readyz", ""); r.status != 503 {
		t.Fatalf("before: status %d, want 503", r.status)
	}
	mu.Lock()
	ready = true
	mu.Unlock()
	if r := do(t, s, "GET", "/readyz", ""); r.status != 200 {
		t.Fatalf("after: status %d, want 200", r.status)
	}
}

func TestConfigDump(t *testing.T) {
	type listener struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	}
	snapshot := map[string]any{
		"gateway": map[string]any{
			"listeners": []listener{{"public", "0.0.0.0:8080"}},
			"admin":     map[string]string{"bearerToken": "<redacted>"},
		},
		"routes": []string{"chat", "embeddings"},
		"html":   "<a&b>",
	}
	tests := []struct {
		name       string
		dump       func() any
		wantStatus int
		check      func(t *testing.T, body []byte)
	}{
		{"snapshot", func() any { return snapshot }, 200, func(t *testing.T, body []byte) {
			var got struct {
				Gateway struct {
					Listeners []listener      `json:"listeners"`
					Admin     json.RawMessage `json:"admin"`
				} `json:"gateway"`
				Routes []string `json:"routes"`
				HTML   string   `json:"html"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(got.Gateway.Listeners) != 1 || got.Gateway.Listeners[0].Address != "0.0.0.0:8080" {
				t.Errorf("listeners = %+v", got.Gateway.Listeners)
			}
			if len(got.Routes) != 2 || got.HTML != "<a&b>" {
				t.Errorf("routes %v html %q", got.Routes, got.HTML)
			}
			if !bytes.Contains(body, []byte("\n  \"gateway\": {\n    \"admin\": {")) {
				t.Errorf("not indented by two spaces:\n%s", body)
			}
			if !bytes.Contains(body, []byte(`"<a&b>"`)) {
				t.Errorf("HTML characters escaped: %s", body)
			}
		}},
		{"nil snapshot", func() any { return nil }, 200, func(t *testing.T, body []byte) {
			if strings.TrimSpace(string(body)) != "null" {
				t.Errorf("body = %q, want null", body)
			}
		}},
		{"unencodable snapshot", func() any { return map[string]float64{"x": math.NaN()} }, 500, func(t *testing.T, body []byte) {
			if !bytes.Contains(body, []byte(`"error":"config dump:`)) {
				t.Errorf("body = %s", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Options{ConfigDump: tt.dump}, nil)
			r := do(t, s, "GET", "/config_dump", "")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
			tt.check(t, r.body)
		})
	}
}

func TestMetricsTextFormat(t *testing.T) {
	s := start(t, Options{Gatherer: newGatherer(t)}, nil)
	r := do(t, s, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content-type = %q, want text/plain", ct)
	}
	for _, want := range []string{"# HELP sluice_test_widgets_total Widgets.", "# TYPE sluice_test_widgets_total counter", "sluice_test_widgets_total 3"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("missing %q in:\n%s", want, r.body)
		}
	}
}

func TestPortZero(t *testing.T) {
	s := start(t, Options{}, nil)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || port == "0" || port == "" {
		t.Errorf("Addr() = %q, want 127.0.0.1 with a real port", s.Addr())
	}
	if r := do(t, s, "GET", "/healthz", ""); r.status != 200 {
		t.Errorf("healthz on %s: %d", s.Addr(), r.status)
	}
}

func TestAddressInUse(t *testing.T) {
	first := start(t, Options{}, nil)
	second := New(Options{Address: first.Addr()})
	err := second.Start()
	if err == nil {
		_ = second.Shutdown(context.Background())
		t.Fatal("second server started on a used address")
	}
	if !strings.Contains(err.Error(), first.Addr()) {
		t.Errorf("error %q does not name the address %s", err, first.Addr())
	}
	if err := second.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown after failed start: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"shutdown without start", func(t *testing.T) {
			s := New(Options{Address: "127.0.0.1:0"})
			for i := range 2 {
				if err := s.Shutdown(context.Background()); err != nil {
					t.Errorf("shutdown %d: %v", i+1, err)
				}
			}
		}},
		{"shutdown twice", func(t *testing.T) {
			s := New(Options{Address: "127.0.0.1:0"})
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			addr := s.Addr()
			for i := range 2 {
				if err := s.Shutdown(context.Background()); err != nil {
					t.Errorf("shutdown %d: %v", i+1, err)
				}
			}
			if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
				t.Error("server still answers after shutdown")
			}
		}},
		{"start twice", func(t *testing.T) {
			s := start(t, Options{}, nil)
			if err := s.Start(); err == nil || !strings.Contains(err.Error(), "already started") {
				t.Errorf("second start: %v", err)
			}
		}},
		{"start after shutdown", func(t *testing.T) {
			s := New(Options{Address: "127.0.0.1:0"})
			_ = s.Shutdown(context.Background())
			if err := s.Start(); err == nil {
				t.Error("start after shutdown succeeded")
			}
		}},
		{"empty address refused", func(t *testing.T) {
			s := New(Options{})
			if err := s.Start(); err == nil || !strings.Contains(err.Error(), "no listen address") {
				t.Errorf("start: %v", err)
			}
		}},
		{"addr before start is the configured one", func(t *testing.T) {
			if got := New(Options{Address: "127.0.0.1:9901"}).Addr(); got != "127.0.0.1:9901" {
				t.Errorf("Addr() = %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestShutdownDeadlineClosesStuckRequests(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := New(Options{Address: "127.0.0.1:0"})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	clientErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr() + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("shutdown = %v, want context.Canceled", err)
	}
	if err := <-clientErr; err == nil {
		t.Error("stuck request completed normally; want its connection closed")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

func TestServerTimeoutsSet(t *testing.T) {
	s := New(Options{Address: "127.0.0.1:0"})
	tests := []struct {
		name string
		got  time.Duration
	}{
		{"ReadHeaderTimeout", s.srv.ReadHeaderTimeout},
		{"ReadTimeout", s.srv.ReadTimeout},
		{"WriteTimeout", s.srv.WriteTimeout},
		{"IdleTimeout", s.srv.IdleTimeout},
	}
	for _, tt := range tests {
		if tt.got <= 0 {
			t.Errorf("%s unset", tt.name)
		}
	}
	if s.srv.MaxHeaderBytes <= 0 {
		t.Error("MaxHeaderBytes unset")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"plain", "Bearer abc", "abc", true},
		{"lowercase scheme", "bearer abc", "abc", true},
		{"extra spaces", "  Bearer   abc  ", "abc", true},
		{"empty", "", "", false},
		{"scheme only", "Bearer", "", false},
		{"scheme and space", "Bearer  ", "", false},
		{"basic", "Basic abc", "", false},
		{"no space", "Bearerabc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := bearerToken(tt.header)
			if got != tt.want || ok != tt.ok {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}
