package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func mustLoad(t *testing.T, paths ...string) *Snapshot {
	t.Helper()
	s, err := Load(paths...)
	if err != nil {
		t.Fatalf("Load(%v): %v", paths, err)
	}
	return s
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(t *testing.T, s *Snapshot)
	}{
		{
			name: "defaults without a Gateway",
			file: "testdata/valid/minimal.yaml",
			check: func(t *testing.T, s *Snapshot) {
				g := s.Gateway
				eq(t, "gateway kind", g.TypeMeta, v1alpha1.TypeMeta{APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.KindGateway})
				eq(t, "gateway name", g.Metadata.Name, "default")
				on := true
				eq(t, "listeners", g.Spec.Listeners, []v1alpha1.Listener{{Name: "listener-0", Address: "127.0.0.1:8080", HTTP2: &on}})
				eq(t, "readHeader", g.Spec.Timeouts.ReadHeader.Duration, 10*time.Second)
				eq(t, "idle", g.Spec.Timeouts.Idle.Duration, 120*time.Second)
				eq(t, "request", g.Spec.Timeouts.Request.Duration, time.Duration(0))
				eq(t, "maxHeaderBytes", g.Spec.Limits.MaxHeaderBytes, 65536)
				eq(t, "maxRequestBodyBytes", g.Spec.Limits.MaxRequestBodyBytes, int64(104857600))
				eq(t, "admin", g.Spec.Admin, v1alpha1.Admin{Address: "127.0.0.1:9901"})
				eq(t, "accessLog", g.Spec.AccessLog.Path, "stdout")
				ratio := 1.0
				eq(t, "tracing", g.Spec.Tracing, v1alpha1.Tracing{SampleRatio: &ratio, ServiceName: "sluice"})
				eq(t, "shutdownTimeout", g.Spec.ShutdownTimeout.Duration, 15*time.Second)

				c := s.Clusters[0].Spec
				eq(t, "cluster type", c.Type, "static")
				eq(t, "cluster port (http URL)", c.Port, 80)
				eq(t, "endpoint weight", c.Endpoints[0].Weight, 1)
				eq(t, "connectTimeout", c.ConnectTimeout.Duration, 5*time.Second)
				eq(t, "requestTimeout", c.RequestTimeout.Duration, 60*time.Second)
				eq(t, "balancing", c.Balancing, "round_robin")
				eq(t, "dnsRefresh (static)", c.DNSRefresh.Duration, time.Duration(0))
				eq(t, "route", RouteName(s.Routes[0]), "all")
				eq(t, "files", s.Files, []string{"testdata/valid/minimal.yaml"})
				eq(t, "warnings", len(s.Warnings), 0)
			},
		},
		{
			name: "every kind with most fields set",
			file: "testdata/valid/full.yaml",
			check: func(t *testing.T, s *Snapshot) {
				g := s.Gateway.Spec
				eq(t, "gateway name", s.Gateway.Metadata.Name, "edge")
				eq(t, "listener 0 name", g.Listeners[0].Name, "public")
				eq(t, "listener 1 default name", g.Listeners[1].Name, "listener-1")
				eq(t, "listener 0 http2", *g.Listeners[0].HTTP2, true)
				eq(t, "listener 1 http2", *g.Listeners[1].HTTP2, false)
				eq(t, "certFile", g.Listeners[0].TLS.CertFile, abs(t, "testdata/valid/certs/server.pem"))
				eq(t, "keyFile", g.Listeners[0].TLS.KeyFile, abs(t, "testdata/valid/certs/server-key.pem"))
				eq(t, "readHeader", g.Timeouts.ReadHeader.Duration, 5*time.Second)
				eq(t, "idle default", g.Timeouts.Idle.Duration, 120*time.Second)
				eq(t, "request", g.Timeouts.Request.Duration, 10*time.Minute)
				eq(t, "unlimited body stays -1", g.Limits.MaxRequestBodyBytes, int64(-1))
				eq(t, "admin address", g.Admin.Address, "127.0.0.1:9902")
				eq(t, "bearer token kept", g.Admin.BearerToken, "s3cr3t-admin-token")
				eq(t, "accessLog", g.AccessLog.Path, "stderr")
				eq(t, "sampleRatio", *g.Tracing.SampleRatio, 0.25)
				eq(t, "serviceName default", g.Tracing.ServiceName, "sluice")
				eq(t, "bare integer is seconds", g.ShutdownTimeout.Duration, 30*time.Second)

				var names []string
				for _, c := range s.Clusters {
					names = append(names, c.Metadata.Name)
				}
				eq(t, "cluster order", names, []string{"api.openai.com", "llm.dns", "redis.static", "local.redis"})
				openai, llm, redis, local := s.Clusters[0].Spec, s.Clusters[1].Spec, s.Clusters[2].Spec, s.Clusters[3].Spec
				eq(t, "https port", openai.Port, 443)
				eq(t, "caFile", openai.TLS.CAFile, abs(t, "testdata/valid/certs/ca.pem"))
				eq(t, "dns port", llm.Port, 8000)
				eq(t, "weights (explicit 0 kept, absent is 1)", []int{llm.Endpoints[0].Weight, llm.Endpoints[1].Weight, llm.Endpoints[2].Weight}, []int{3, 0, 1})
				eq(t, "health check", *llm.HealthCheck, v1alpha1.HealthCheck{
					Path: "/healthz", Interval: v1alpha1.D(10 * time.Second), Timeout: v1alpha1.D(2 * time.Second),
					UnhealthyThreshold: 2, HealthyThreshold: 1, ExpectedStatuses: []int{200, 204},
				})
				eq(t, "dnsRefresh", llm.DNSRefresh.Duration, 30*time.Second)
				eq(t, "redis port", redis.Port, 6379)
				eq(t, "redis options", *redis.Redis, v1alpha1.RedisOptions{Username: "sluice", Password: "redis-pass-456", DB: 2})
				eq(t, "embedded redis port", local.Port, 6379)

				chat := s.Routes[0]
				eq(t, "route name with namespace", RouteName(chat), "team-a/chat")
				eq(t, "hosts lower-cased", chat.Spec.Hosts, []string{"api.example.com", "*.example.org"})
				eq(t, "methods upper-cased", chat.Spec.Match.Methods, []string{"POST", "GET"})
				eq(t, "header present:false", *chat.Spec.Match.Headers[1].Present, false)
				eq(t, "route timeout", chat.Spec.Timeout.Duration, 90*time.Second)
				eq(t, "split", s.Routes[1].Spec.WeightedClusters, []v1alpha1.WeightedCluster{{Cluster: "api.openai.com", Weight: 90}, {Cluster: "llm.dns", Weight: 10}})

				p := s.WasmPlugins[0]
				eq(t, "plugin name", PluginName(p), "higress-system.ai-proxy")
				eq(t, "priority", *p.Spec.Priority, int32(100))
				eq(t, "failStrategy", p.Spec.FailStrategy, "FAIL_OPEN")
				eq(t, "env", p.Spec.VMConfig.Env, []v1alpha1.EnvVar{
					{Name: "OPENAI_API_KEY", ValueFrom: "INLINE", Value: "sk-env-secret"},
					{Name: "LOG_LEVEL", ValueFrom: "INLINE", Value: "debug"},
					{Name: "HOME", ValueFrom: "HOST"},
				})
				eq(t, "defaultConfig", p.Spec.DefaultConfig, map[string]any{"provider": map[string]any{
					"type": "openai", "apiTokens": []any{"sk-token-1", "sk-token-2"}, "timeout": int64(30000),
				}})
				eq(t, "matchRules", p.Spec.MatchRules, []v1alpha1.MatchRule{
					{Ingress: []string{"team-a/chat"}, Config: map[string]any{"provider": map[string]any{"type": "qwen"}}, RouteType: "HTTP"},
					{Domain: []string{"*.example.org"}, ConfigDisable: true, RouteType: "HTTP"},
				})
				eq(t, "warnings", len(s.Warnings), 0)
			},
		},
		{
			name: "plugin URLs and pull policies",
			file: "testdata/valid/plugins.yaml",
			check: func(t *testing.T, s *Snapshot) {
				type want struct{ url, policy string }
				got := map[string]want{}
				for _, p := range s.WasmPlugins {
					got[p.Metadata.Name] = want{p.Spec.URL, p.Spec.ImagePullPolicy}
					eq(t, p.Metadata.Name+" failStrategy", p.Spec.FailStrategy, "FAIL_CLOSE")
				}
				digest := "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
				eq(t, "plugins", got, map[string]want{
					"local-file":  {"file://" + abs(t, "testdata/valid/plugins/noop.wasm"), "IfNotPresent"},
					"no-scheme":   {"oci://ghcr.io/example/plugin:2.1.0", "IfNotPresent"},
					"latest-tag":  {"oci://ghcr.io/example/plugin:latest", "Always"},
					"no-tag":      {"oci://registry.local:5000/example/plugin", "Always"},
					"by-digest":   {"oci://ghcr.io/example/plugin@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "IfNotPresent"},
					"http-module": {"https://plugins.example.com/ai-cache/1.0.0/plugin.wasm", "IfNotPresent"},
				})
				eq(t, "sha256 lower-cased", s.WasmPlugins[4].Spec.SHA256, digest)
				eq(t, "phase default", s.WasmPlugins[0].Spec.Phase, "UNSPECIFIED_PHASE")
				eq(t, "phase", s.WasmPlugins[5].Spec.Phase, "AUTHN")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustLoad(t, tt.file))
		})
	}
}

func TestLoadDirectoryOrder(t *testing.T) {
	tests := []struct {
		name      string
		paths     []string
		wantFiles []string
		wantRoute []string
	}{
		{
			name:      "directory: yaml and yml files by name, hidden files, other files and subdirectories skipped",
			paths:     []string{"testdata/dir"},
			wantFiles: []string{"testdata/dir/10-clusters.yml", "testdata/dir/20-routes.yaml", "testdata/dir/30-last.yaml"},
			wantRoute: []string{"r1", "r2", "r3", "r4"},
		},
		{
			name:      "files in the order given",
			paths:     []string{"testdata/dir/30-last.yaml", "testdata/dir/20-routes.yaml", "testdata/dir/10-clusters.yml"},
			wantFiles: []string{"testdata/dir/30-last.yaml", "testdata/dir/20-routes.yaml", "testdata/dir/10-clusters.yml"},
			wantRoute: []string{"r4", "r2", "r3", "r1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, tt.paths...)
			eq(t, "files", s.Files, tt.wantFiles)
			var routes []string
			for _, r := range s.Routes {
				routes = append(routes, r.Metadata.Name)
			}
			eq(t, "routes", routes, tt.wantRoute)
		})
	}
}

func TestLoadPathProblems(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"no paths", nil, "no configuration files given (name one or more YAML files or directories)"},
		{"missing file", []string{"testdata/nope.yaml"}, "testdata/nope.yaml: cannot read: no such file or directory"},
		{"directory without yaml", []string{empty}, empty + ": directory has no *.yaml or *.yml files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.paths...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestLoadSameFileTwiceWarns(t *testing.T) {
	s := mustLoad(t, "testdata/dir", "testdata/dir/30-last.yaml")
	eq(t, "files", len(s.Files), 3)
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0].Message, "named more than once") {
		t.Fatalf("warnings = %v", s.Warnings)
	}
}

func TestDuplicateNameAcrossFiles(t *testing.T) {
	_, err := Load("testdata/multi/a.yaml", "testdata/multi/b.yaml")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("err = %v, want one error", err)
	}
	e := list[0]
	eq(t, "file", e.File, "testdata/multi/b.yaml")
	eq(t, "line", e.Line, 5)
	eq(t, "field", e.Field, "metadata.name")
	if !strings.Contains(e.Message, "first declared at testdata/multi/a.yaml:4") {
		t.Errorf("message %q does not name the first declaration", e.Message)
	}
}

// A syntax error in one file hides its resources, so references to them
// are not reported as missing.
func TestReferencesNotCheckedAfterSyntaxError(t *testing.T) {
	_, err := Load("testdata/multi/route.yaml", "testdata/multi/broken.yaml")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	eq(t, "errors", len(list), 1)
	eq(t, "file", list[0].File, "testdata/multi/broken.yaml")
	if !strings.HasPrefix(list[0].Message, "invalid YAML") {
		t.Errorf("message = %q", list[0].Message)
	}
}

func TestParseMatchesLoad(t *testing.T) {
	const file = "testdata/valid/full.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	loaded := mustLoad(t, file)
	eq(t, "hash", parsed.Hash, loaded.Hash)
	eq(t, "files", parsed.Files, []string{file})
}

func TestRelativeFileURL(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugins", "p.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, want string
		warns           int
	}{
		{"relative to the config file", "file://plugins/p.wasm", "file://" + filepath.Join(dir, "plugins", "p.wasm"), 0},
		{"dot-relative", "file://./plugins/p.wasm", "file://" + filepath.Join(dir, "plugins", "p.wasm"), 0},
		{"absolute stays", "file://" + filepath.Join(dir, "plugins", "p.wasm"), "file://" + filepath.Join(dir, "plugins", "p.wasm"), 0},
		{"missing file warns", "file://nope.wasm", "file://" + filepath.Join(dir, "nope.wasm"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "apiVersion: extensions.higress.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: p}\nspec:\n  url: " + tt.url + "\n"
			s, err := Parse(filepath.Join(dir, "config.yaml"), []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "url", s.WasmPlugins[0].Spec.URL, tt.want)
			eq(t, "warnings", len(s.Warnings), tt.warns)
		})
	}
}

func TestEmptyInput(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n---\n", "~\n"} {
		s, err := Parse("empty.yaml", []byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if s.Gateway == nil || len(s.Routes) != 0 {
			t.Errorf("Parse(%q) = %+v", in, s)
		}
		if len(s.Warnings) != 1 || s.Warnings[0].Message != "file holds no resources" {
			t.Errorf("Parse(%q) warnings = %v", in, s.Warnings)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name, ns, route, plugin string
	}{
		{"chat", "", "chat", "chat"},
		{"chat", "team-a", "team-a/chat", "team-a.chat"},
	}
	for _, tt := range tests {
		meta := v1alpha1.ObjectMeta{Name: tt.name, Namespace: tt.ns}
		eq(t, "RouteName", RouteName(&v1alpha1.Route{Metadata: meta}), tt.route)
		eq(t, "PluginName", PluginName(&v1alpha1.WasmPlugin{Metadata: meta}), tt.plugin)
	}
}

// Loads share nothing: concurrent loads give the same result (run with -race).
func TestConcurrentLoads(t *testing.T) {
	want := mustLoad(t, "testdata/valid").Hash
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := Load("testdata/valid")
			if err != nil {
				t.Error(err)
				return
			}
			if s.Hash != want {
				t.Errorf("hash %s, want %s", s.Hash, want)
			}
		})
	}
	wg.Wait()
}
