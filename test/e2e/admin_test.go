package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAdminAPI checks the admin endpoints of a running gateway: liveness,
// readiness, metrics, and a config dump that requires the token and
// redacts secrets.
func TestAdminAPI(t *testing.T) {
	const token = "e2e-admin-token-9f8e7d"
	const redisPassword = "redis-pass-e2e-5c4b3a"
	up := newEchoUpstream(t, "up")
	g := startGateway(t, gwConfig{
		AdminToken: token,
		Docs: []string{
			clusterDoc("up", []string{up.addr()}),
			doc("Cluster", "cache", `{type: redis, endpoints: [{address: "127.0.0.1:6379"}], redis: {username: app, password: "`+redisPassword+`"}}`),
			routeDoc("chat", "match: {path: {prefix: /v1/}}", "cluster: up"),
		},
	})
	if resp, body := g.get("", "/v1/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied request: status %d: %s", resp.StatusCode, body)
	}

	t.Run("healthz needs no token", func(t *testing.T) {
		resp, body := g.admin("/healthz", false)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
			t.Errorf("GET /healthz: %d %s, want 200 with status ok", resp.StatusCode, body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		resp, body := g.admin("/readyz", true)
		var r struct{ Status string }
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != http.StatusOK || r.Status != "ready" {
			t.Errorf("GET /readyz: %d %s, want 200 with status ready", resp.StatusCode, body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		text := g.metrics()
		v, ok := metricValue(text, "sluice_http_requests_total", map[string]string{"route": "chat", "cluster": "up", "code_class": "2xx"})
		if !ok || v != 1 {
			t.Errorf("sluice_http_requests_total{route=chat,cluster=up,code_class=2xx} = %v (found %v), want 1", v, ok)
		}
		if _, ok := metricValue(text, "sluice_upstream_endpoint_healthy", map[string]string{"cluster": "up", "endpoint": up.addr()}); !ok {
			t.Errorf("no sluice_upstream_endpoint_healthy series for cluster up")
		}
	})
	for _, path := range []string{"/config_dump", "/metrics", "/readyz"} {
		t.Run(strings.TrimPrefix(path, "/")+" requires the token", func(t *testing.T) {
			resp, body := g.admin(path, false)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s without token: %d %s, want 401", path, resp.StatusCode, body)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s without token: no WWW-Authenticate header", path)
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+g.app.AdminAddr()+path, nil)
			req.Header.Set("Authorization", "Bearer "+token+"x")
			if resp, body := g.do(req); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with a wrong token: %d %s, want 401", path, resp.StatusCode, body)
			}
		})
	}
	t.Run("config_dump redacts secrets", func(t *testing.T) {
		resp, body := g.admin("/config_dump", true)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /config_dump: %d %s", resp.StatusCode, body)
		}
		for _, secret := range []string{token, redisPassword} {
			if strings.Contains(string(body), secret) {
				t.Errorf("config dump shows a secret %q:\n%s", secret, body)
			}
		}
		var dump struct {
			Config struct {
				Gateway struct {
					Spec struct {
						Admin struct {
							BearerToken string `json:"bearerToken"`
						} `json:"admin"`
					} `json:"spec"`
				}
				Clusters []struct {
					Metadata struct{ Name string } `json:"metadata"`
					Spec     struct {
						Endpoints []struct{ Address string } `json:"endpoints"`
						Redis     *struct {
							Username string `json:"username"`
							Password string `json:"password"`
						} `json:"redis"`
					} `json:"spec"`
				}
				Routes []struct {
					Metadata struct{ Name string } `json:"metadata"`
				}
			} `json:"config"`
		}
		if err := json.Unmarshal(body, &dump); err != nil {
			t.Fatalf("config dump is not JSON: %v\n%s", err, body)
		}
		c := dump.Config
		if got := c.Gateway.Spec.Admin.BearerToken; got != "<redacted>" {
			t.Errorf("admin.bearerToken in the dump is %q, want <redacted>", got)
		}
		var sawUp, sawCache bool
		for _, cl := range c.Clusters {
			switch cl.Metadata.Name {
			case "up":
				sawUp = len(cl.Spec.Endpoints) == 1 && cl.Spec.Endpoints[0].Address == up.addr()
			case "cache":
				sawCache = cl.Spec.Redis != nil && cl.Spec.Redis.Password == "<redacted>" && cl.Spec.Redis.Username == "app"
			}
		}
		if !sawUp {
			t.Errorf("the dump does not show cluster up with endpoint %s:\n%s", up.addr(), body)
		}
		if !sawCache {
			t.Errorf("the dump does not show cluster cache with username app and the password <redacted>:\n%s", body)
		}
		if len(c.Routes) != 1 || c.Routes[0].Metadata.Name != "chat" {
			t.Errorf("the dump does not show route chat:\n%s", body)
		}
	})
}
