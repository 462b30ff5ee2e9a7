package cluster

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name        string
		address     string
		clusterType string
		tlsOn       bool
		clusterPort int
		want        endpointSpec
		wantAddress string
		wantErr     string
	}{
		{name: "host and port", address: "10.0.0.1:8080", want: endpointSpec{"http", "10.0.0.1", 8080, 1}, wantAddress: "10.0.0.1:8080"},
		{name: "https URL default port", address: "https://api.openai.com", want: endpointSpec{"https", "api.openai.com", 443, 1}},
		{name: "http URL default port ignores cluster port", address: "http://llm.internal", clusterPort: 9000, want: endpointSpec{"http", "llm.internal", 80, 1}},
		{name: "URL with port and path", address: "https://api.example.com:8443/v1", want: endpointSpec{"https", "api.example.com", 8443, 1}},
		{name: "bare host takes cluster port", address: "llm.internal", clusterPort: 9000, want: endpointSpec{"http", "llm.internal", 9000, 1}},
		{name: "bare host with TLS", address: "llm.internal", tlsOn: true, want: endpointSpec{"https", "llm.internal", 443, 1}},
		{name: "host and port with TLS", address: "127.0.0.1:8443", tlsOn: true, want: endpointSpec{"https", "127.0.0.1", 8443, 1}},
		{name: "explicit http wins over TLS", address: "http://127.0.0.1:8080", tlsOn: true, want: endpointSpec{"http", "127.0.0.1", 8080, 1}},
		{name: "IPv6 with port", address: "[::1]:8080", want: endpointSpec{"http", "::1", 8080, 1}, wantAddress: "[::1]:8080"},
		{name: "IPv6 without port", address: "[::1]", clusterPort: 81, want: endpointSpec{"http", "::1", 81, 1}, wantAddress: "[::1]:81"},
		{name: "redis host", address: "10.0.0.2:6379", clusterType: v1alpha1.ClusterRedis, want: endpointSpec{"redis", "10.0.0.2", 6379, 1}},
		{name: "rediss URL", address: "rediss://cache.internal:6380", clusterType: v1alpha1.ClusterRedis, want: endpointSpec{"rediss", "cache.internal", 6380, 1}},
		{name: "https in redis cluster", address: "https://x", clusterType: v1alpha1.ClusterRedis, wantErr: `scheme "https" is not usable in a redis cluster`},
		{name: "unknown scheme", address: "ftp://x", wantErr: `scheme "ftp" is not usable`},
		{name: "bad port", address: "x:abc", wantErr: `port "abc" is not a number`},
		{name: "port out of range", address: "x:70000", wantErr: `port "70000"`},
		{name: "empty", address: " ", wantErr: "address is empty"},
		{name: "credentials redacted", address: "https://user:hunter2@x", wantErr: "credentials in the URL are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := tt.clusterType
			if typ == "" {
				typ = v1alpha1.ClusterStatic
			}
			got, err := parseEndpoint(v1alpha1.Endpoint{Address: tt.address, Weight: 1}, typ, tt.tlsOn, tt.clusterPort)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.wantAddress != "" {
				if a := newEndpoint(got, got.host).Address(); a != tt.wantAddress {
					t.Errorf("Address() = %q, want %q", a, tt.wantAddress)
				}
			}
		})
	}
}

func TestEndpointAuthority(t *testing.T) {
	tests := []struct {
		spec endpointSpec
		want string
	}{
		{endpointSpec{"http", "llm.internal", 80, 1}, "llm.internal"},
		{endpointSpec{"https", "api.openai.com", 443, 1}, "api.openai.com"},
		{endpointSpec{"http", "localhost", 8080, 1}, "localhost:8080"},
		{endpointSpec{"https", "::1", 443, 1}, "[::1]"},
		{endpointSpec{"http", "::1", 8080, 1}, "[::1]:8080"},
	}
	for _, tt := range tests {
		if got := newEndpoint(tt.spec, "10.0.0.1").authority(); got != tt.want {
			t.Errorf("authority(%+v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}
