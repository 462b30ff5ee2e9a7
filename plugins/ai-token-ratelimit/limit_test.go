package main

import "testing"

// These tests check which window a request falls in (§2.3 step 2),
// without a host.

type fakeRequest struct {
	headers map[string]string
	url     string
	remote  string
}

func (r fakeRequest) header(name string) (string, bool) {
	v, ok := r.headers[name]
	return v, ok
}
func (r fakeRequest) path() string          { return r.url }
func (r fakeRequest) remoteAddress() string { return r.remote }

func TestLookup(t *testing.T) {
	item := func(sel, keys string) string {
		return `{"rule_name":"rn",` + redisJSON + `,"rule_items":[{` + sel + `,"limit_keys":[` + keys + `]}]}`
	}
	cases := []struct {
		name    string
		config  string
		req     fakeRequest
		wantKey string // "" means no limit applies
		count   int64
	}{
		{"global", `{"rule_name":"rn",` + redisJSON + `,"global_threshold":{"token_per_minute":1000}}`,
			fakeRequest{url: "/v1/chat/completions"}, "higress-token-ratelimit:rn:global_threshold:60", 1000},
		{"header exact", item(`"limit_by_header":"x-api-key"`, `{"key":"test-key-123","token_per_minute":10}`),
			fakeRequest{headers: map[string]string{"x-api-key": "test-key-123"}},
			"higress-token-ratelimit:rn:limit_by_header:60:x-api-key:test-key-123", 10},
		{"header absent", item(`"limit_by_header":"x-api-key"`, `{"key":"k","token_per_minute":10}`),
			fakeRequest{}, "", 0},
		{"header other value", item(`"limit_by_header":"x-api-key"`, `{"key":"k","token_per_minute":10}`),
			fakeRequest{headers: map[string]string{"x-api-key": "other"}}, "", 0},
		{"param", item(`"limit_by_param":"apikey"`, `{"key":"param-key-456","token_per_hour":5}`),
			fakeRequest{url: "/v1/chat/completions?x=1&apikey=param-key-456&apikey=second"},
			"higress-token-ratelimit:rn:limit_by_param:3600:apikey:param-key-456", 5},
		{"param absent", item(`"limit_by_param":"apikey"`, `{"key":"k","token_per_hour":5}`),
			fakeRequest{url: "/v1/chat/completions?other=1"}, "", 0},
		{"per param any", item(`"limit_by_per_param":"apikey"`, `{"key":"*","token_per_minute":7}`),
			fakeRequest{url: "/p?apikey=abc"}, "higress-token-ratelimit:rn:limit_by_per_param:60:apikey:abc", 7},
		{"consumer", item(`"limit_by_consumer":""`, `{"key":"consumer1","token_per_day":9}`),
			fakeRequest{headers: map[string]string{"x-mse-consumer": "consumer1"}},
			"higress-token-ratelimit:rn:limit_by_consumer:86400:x-mse-consumer:consumer1", 9},
		{"per consumer regexp", item(`"limit_by_per_consumer":""`, `{"key":"regexp:^team-","token_per_second":3}`),
			fakeRequest{headers: map[string]string{"x-mse-consumer": "team-a"}},
			"higress-token-ratelimit:rn:limit_by_per_consumer:1:x-mse-consumer:team-a", 3},
		{"cookie", item(`"limit_by_cookie":"session-id"`, `{"key":"session-789","token_per_minute":4}`),
			fakeRequest{headers: map[string]string{"cookie": "session-id=session-789; other=value"}},
			"higress-token-ratelimit:rn:limit_by_cookie:60:session-id:session-789", 4},
		{"cookie value with =", item(`"limit_by_per_cookie":"s"`, `{"key":"*","token_per_minute":4}`),
			fakeRequest{headers: map[string]string{"cookie": "a=1; s=abc==; b=2"}},
			"higress-token-ratelimit:rn:limit_by_per_cookie:60:s:abc==", 4},
		{"cookie pair without = (upstream panics)", item(`"limit_by_per_cookie":"s"`, `{"key":"*","token_per_minute":4}`),
			fakeRequest{headers: map[string]string{"cookie": "s; t=1"}}, "", 0},
		{"per header regexp", item(`"limit_by_per_header":"x-user"`, `{"key":"regexp:^user-\\d+$","token_per_minute":2}`),
			fakeRequest{headers: map[string]string{"x-user": "user-42"}},
			"higress-token-ratelimit:rn:limit_by_per_header:60:x-user:user-42", 2},
		{"per header regexp no match", item(`"limit_by_per_header":"x-user"`, `{"key":"regexp:^user-\\d+$","token_per_minute":2}`),
			fakeRequest{headers: map[string]string{"x-user": "admin"}}, "", 0},
		{"per ip remote addr in cidr", item(`"limit_by_per_ip":"from-remote-addr"`, `{"key":"192.168.1.0/24","token_per_minute":8}`),
			fakeRequest{remote: "192.168.1.7:50123"},
			"higress-token-ratelimit:rn:limit_by_per_ip:60:from-remote-addr:192.168.1.7", 8},
		{"per ip remote addr outside", item(`"limit_by_per_ip":"from-remote-addr"`, `{"key":"192.168.1.0/24","token_per_minute":8}`),
			fakeRequest{remote: "10.0.0.1:1"}, "", 0},
		{"per ip from header, first of list", item(`"limit_by_per_ip":"from-header-x-forwarded-for"`, `{"key":"10.0.0.0/8","token_per_minute":8},{"key":"0.0.0.0/0","token_per_minute":1}`),
			fakeRequest{headers: map[string]string{"x-forwarded-for": " 10.1.2.3 , 172.16.0.1"}},
			"higress-token-ratelimit:rn:limit_by_per_ip:60:from-header-x-forwarded-for:10.1.2.3", 8},
		{"per ip v6 with port", item(`"limit_by_per_ip":"from-remote-addr"`, `{"key":"2001:db8::/32","token_per_minute":6}`),
			fakeRequest{remote: "[2001:db8::1]:443"},
			"higress-token-ratelimit:rn:limit_by_per_ip:60:from-remote-addr:2001:db8::1", 6},
		{"per ip invalid address", item(`"limit_by_per_ip":"from-header-x-real-ip"`, `{"key":"0.0.0.0/0","token_per_minute":6}`),
			fakeRequest{headers: map[string]string{"x-real-ip": "not-an-ip"}}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := decode(t, tc.config)
			if err != nil {
				t.Fatal(err)
			}
			b, ok := c.lookup(tc.req)
			if tc.wantKey == "" {
				if ok {
					t.Errorf("limit %q applies, want none", b.key())
				}
				return
			}
			if !ok || b.key() != tc.wantKey || b.count != tc.count {
				t.Errorf("lookup = %q %+v %v, want key %q count %d", b.key(), b.limit, ok, tc.wantKey, tc.count)
			}
		})
	}
}

func TestLookupFirstMatchingItemWins(t *testing.T) {
	c, err := decode(t, `{"rule_name":"rn",`+redisJSON+`,"rule_items":[
		{"limit_by_header":"x-a","limit_keys":[{"key":"1","token_per_minute":1}]},
		{"limit_by_per_consumer":"","limit_keys":[{"key":"*","token_per_minute":2}]},
		{"limit_by_header":"x-b","limit_keys":[{"key":"1","token_per_minute":3}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.lookup(fakeRequest{headers: map[string]string{"x-a": "2", "x-b": "1", "x-mse-consumer": "c"}})
	if b.count != 2 {
		t.Errorf("bucket %q (count %d), want the per-consumer item (count 2)", b.key(), b.count)
	}
}
