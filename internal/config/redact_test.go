package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	s := mustLoad(t, "testdata/valid/full.yaml")
	before, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Redacted()

	g := r.Gateway.Spec
	eq(t, "bearerToken", g.Admin.BearerToken, "<redacted>")
	eq(t, "tracing headers", g.Tracing.Headers, map[string]string{"x-api-key": "<redacted>", "x-empty": ""})
	redis := r.Clusters[2].Spec.Redis
	eq(t, "redis password", redis.Password, "<redacted>")
	eq(t, "redis username kept", redis.Username, "sluice")
	p := r.WasmPlugins[0].Spec
	eq[any](t, "apiTokens", p.DefaultConfig["provider"].(map[string]any)["apiTokens"], []any{"<redacted>", "<redacted>"})
	eq(t, "plugin type kept", p.DefaultConfig["provider"].(map[string]any)["type"], "openai")
	eq[any](t, "number under a plain key kept", p.DefaultConfig["provider"].(map[string]any)["timeout"], int64(30000))
	eq(t, "secret-named env value", p.VMConfig.Env[0].Value, "<redacted>")
	eq(t, "plain env value kept", p.VMConfig.Env[1].Value, "debug")
	eq(t, "hash kept", r.Hash, s.Hash)
	eq(t, "files kept", r.Files, s.Files)

	dump, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cr3t-admin-token", "tracing-key-123", "redis-pass-456", "sk-token-1", "sk-env-secret"} {
		if strings.Contains(string(dump), secret) {
			t.Errorf("redacted dump contains %q", secret)
		}
	}

	// The original is untouched, and the copy shares no memory with it.
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Fatal("Redacted modified the original snapshot")
	}
	r.Clusters[0].Spec.Endpoints[0].Address = "changed"
	r.Gateway.Spec.Listeners[0].Name = "changed"
	*r.Gateway.Spec.Tracing.SampleRatio = 0.5
	r.WasmPlugins[0].Spec.DefaultConfig["provider"].(map[string]any)["type"] = "changed"
	r.Routes[0].Spec.Hosts[0] = "changed"
	after, _ = json.Marshal(s)
	if string(before) != string(after) {
		t.Fatal("changing the redacted copy changed the original")
	}
}

func TestRedactedNil(t *testing.T) {
	var s *Snapshot
	if s.Redacted() != nil {
		t.Fatal("Redacted of nil is not nil")
	}
}

func TestRedactedCopiesEveryField(t *testing.T) {
	s := mustLoad(t, "testdata/valid/minimal.yaml")
	r := s.Redacted()
	if !reflect.DeepEqual(s, r) {
		t.Fatalf("a snapshot without secrets changed when redacted:\n%+v\n%+v", s, r)
	}
}

func TestSecretKey(t *testing.T) {
	tests := map[string]bool{
		"apiTokens": true, "api_key": true, "X-Api-Key": true, "OPENAI_API_KEY": true, "password": true,
		"clientSecret": true, "Authorization": true, "accessKeyId": true, "private-key": true,
		"type": false, "keys": false, "maxTokens": true, "timeout": false, "model": false,
	}
	for k, want := range tests {
		if got := secretKey(k); got != want {
			t.Errorf("secretKey(%q) = %v, want %v", k, got, want)
		}
	}
}
