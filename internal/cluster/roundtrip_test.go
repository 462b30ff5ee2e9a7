package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

func TestOverride(t *testing.T) {
	a, b, z := idServer(t, "a"), idServer(t, "b"), idServer(t, "zero")
	spec := v1alpha1.ClusterSpec{
		Balancing: v1alpha1.BalanceWeighted,
		Endpoints: []v1alpha1.Endpoint{{Address: addrOf(a), Weight: 1}, {Address: addrOf(b), Weight: 1}, {Address: addrOf(z), Weight: 0}},
	}
	c := oneCluster(t, Options{}, spec)
	c.Endpoints()[1].healthy.Store(false) // b ejected

	tests := []struct {
		name     string
		override string
		want     string
	}{
		{name: "healthy endpoint", override: addrOf(a), want: "a:"},
		{name: "unhealthy endpoint still used", override: addrOf(b), want: "b:"},
		{name: "weight 0 endpoint", override: addrOf(z), want: "zero:"},
		{name: "not an endpoint falls back to balancing", override: "10.9.9.9:80", want: "a:"},
		{name: "empty override balances", override: "", want: "a:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				body, ep := mustSend(t, c, tt.override)
				if body != tt.want {
					t.Fatalf("body %q, want %q", body, tt.want)
				}
				if tt.override != "" && strings.HasPrefix(tt.want, "zero") && ep.Weight() != 0 {
					t.Errorf("endpoint weight %d", ep.Weight())
				}
			}
		})
	}
}

func TestRoundTripSetsURLAndKeepsAuthority(t *testing.T) {
	var gotHost atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
	}))
	t.Cleanup(srv.Close)
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(addrOf(srv))})

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/chat/completions", nil)
	req.Host = "api.openai.com"
	resp, ep, err := c.RoundTrip(req, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.URL.Scheme != "http" || req.URL.Host != addrOf(srv) || ep.Address() != addrOf(srv) {
		t.Errorf("URL %s, endpoint %s", req.URL, ep.Address())
	}
	if h := gotHost.Load(); h != "api.openai.com" {
		t.Errorf("upstream saw Host %q, want the caller's authority", h)
	}
}

func TestNoHealthyEndpoint(t *testing.T) {
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints("127.0.0.1:1", "127.0.0.1:2")})
	for _, e := range c.Endpoints() {
		e.healthy.Store(false)
	}
	_, ep, err := send(t, c, http.MethodGet, "", "")
	if !errors.Is(err, ErrNoHealthyEndpoint) || ep != nil {
		t.Fatalf("err = %v, endpoint %v; want ErrNoHealthyEndpoint", err, ep)
	}
	if !strings.Contains(err.Error(), "cluster up: no healthy upstream (0 of 2 endpoints healthy)") {
		t.Errorf("error %q", err)
	}
}

func TestWeightedOnlyZeroWeightsLeft(t *testing.T) {
	zero := idServer(t, "zero")
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{
		Balancing: v1alpha1.BalanceWeighted,
		Endpoints: []v1alpha1.Endpoint{{Address: "127.0.0.1:1", Weight: 1}, {Address: addrOf(zero), Weight: 0}},
	})
	c.Endpoints()[0].healthy.Store(false)
	_, _, err := send(t, c, http.MethodGet, "", "")
	if !errors.Is(err, ErrNoHealthyEndpoint) || !strings.Contains(err.Error(), "0 of 2 endpoints healthy with weight > 0") {
		t.Fatalf("err = %v", err)
	}
	if body, _ := mustSend(t, c, addrOf(zero)); body != "zero:" {
		t.Errorf("override to the weight-0 endpoint got %q", body)
	}
}

func TestConnectErrorOnRefusedPort(t *testing.T) {
	dead := deadAddr(t)
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(dead)})
	_, ep, err := send(t, c, http.MethodGet, "", "")
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *ConnectError", err, err)
	}
	if ce.Endpoint != dead || ep == nil || ep.Address() != dead {
		t.Errorf("ConnectError.Endpoint %q, endpoint %v; want %s", ce.Endpoint, ep, dead)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("the dial error is not reachable through Unwrap: %v", err)
	}
	if n := ep.InFlight(); n != 0 {
		t.Errorf("%d in flight after a failed request", n)
	}
}

// strictBody fails reads after Close, so a retry that reuses a body the
// failed attempt closed would not arrive intact.
type strictBody struct {
	r      io.Reader
	reads  atomic.Int32
	closes atomic.Int32
}

func (b *strictBody) Read(p []byte) (int, error) {
	if b.closes.Load() > 0 {
		return 0, errors.New("read after close")
	}
	b.reads.Add(1)
	return b.r.Read(p)
}

func (b *strictBody) Close() error {
	b.closes.Add(1)
	return nil
}

func TestRetryOnConnectFailure(t *testing.T) {
	live := idServer(t, "live")
	tests := []struct {
		name         string
		endpoints    []string
		retries      *v1alpha1.Retries
		method       string
		body         string
		want         string // response body; "" means a *ConnectError
		wantEp       string
		wantAttempts int32
	}{
		{name: "POST retried onto live endpoint", endpoints: []string{deadAddr(t), addrOf(live)}, retries: &v1alpha1.Retries{ConnectFailure: 1},
			method: http.MethodPost, body: "hello, upstream", want: "live:hello, upstream", wantEp: addrOf(live), wantAttempts: 2},
		{name: "GET retried, stops once connected", endpoints: []string{deadAddr(t), addrOf(live)}, retries: &v1alpha1.Retries{ConnectFailure: 3},
			method: http.MethodGet, want: "live:", wantEp: addrOf(live), wantAttempts: 2},
		{name: "no retries configured", endpoints: []string{deadAddr(t), addrOf(live)},
			method: http.MethodPost, body: "x", wantAttempts: 1},
		{name: "retries exhausted", endpoints: []string{deadAddr(t), deadAddr(t), deadAddr(t)}, retries: &v1alpha1.Retries{ConnectFailure: 1},
			method: http.MethodPost, body: "x", wantAttempts: 2},
		{name: "no endpoint left to retry on", endpoints: []string{deadAddr(t), deadAddr(t)}, retries: &v1alpha1.Retries{ConnectFailure: 5},
			method: http.MethodGet, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(tt.endpoints...), Retries: tt.retries})
			var attempts atomic.Int32
			c.rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				attempts.Add(1)
				return c.transport.RoundTrip(r)
			})
			var body *strictBody
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, "http://placeholder/", nil)
			if tt.body != "" {
				body = &strictBody{r: strings.NewReader(tt.body)}
				req.Body = body
				req.ContentLength = int64(len(tt.body))
			}
			resp, ep, err := c.RoundTrip(req, "")
			if n := attempts.Load(); n != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", n, tt.wantAttempts)
			}
			if tt.want == "" {
				var ce *ConnectError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *ConnectError", err)
				}
				if ep == nil || ep.Address() != ce.Endpoint {
					t.Errorf("endpoint %v, ConnectError for %s", ep, ce.Endpoint)
				}
				if body != nil && body.closes.Load() != 1 {
					t.Errorf("request body closed %d times, want 1", body.closes.Load())
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != tt.want || ep.Address() != tt.wantEp {
				t.Errorf("got %q from %s, want %q from %s", got, ep.Address(), tt.want, tt.wantEp)
			}
			if body != nil {
				eventually(t, "the request body to be closed", func() bool { return body.closes.Load() >= 1 })
				if n := body.closes.Load(); n != 1 {
					t.Errorf("request body closed %d times, want 1", n)
				}
			}
		})
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNoRetryAfterBodyWasRead(t *testing.T) {
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{
		Endpoints: endpoints("127.0.0.1:1", "127.0.0.1:2"),
		Retries:   &v1alpha1.Retries{ConnectFailure: 3},
	})
	var calls atomic.Int32
	c.rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		var b [1]byte
		r.Body.Read(b[:])
		r.Body.Close()
		return nil, &ConnectError{Endpoint: r.URL.Host, Err: errors.New("refused")}
	})
	body := &strictBody{r: strings.NewReader("payload")}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://placeholder/", body)
	_, _, err := c.RoundTrip(req, "")
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want the ConnectError", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1: a body already read must not be sent again", n)
	}
	if n := body.closes.Load(); n != 1 {
		t.Errorf("request body closed %d times, want 1", n)
	}
}

func TestNoRetryAfterConnected(t *testing.T) {
	// The first endpoint accepts the connection and drops it: the request
	// may have reached it, so it must not be retried.
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(hangup.Close)
	var liveHits atomic.Int32
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { liveHits.Add(1) }))
	t.Cleanup(live.Close)

	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{
		Endpoints: endpoints(addrOf(hangup), addrOf(live)),
		Retries:   &v1alpha1.Retries{ConnectFailure: 3},
	})
	_, ep, err := send(t, c, http.MethodPost, "once only", "")
	var ce *ConnectError
	if err == nil || errors.As(err, &ce) {
		t.Fatalf("err = %v, want a non-connect failure", err)
	}
	if ep == nil || ep.Address() != addrOf(hangup) {
		t.Errorf("endpoint %v, want %s", ep, addrOf(hangup))
	}
	if n := liveHits.Load(); n != 0 {
		t.Errorf("request retried onto the live endpoint %d times", n)
	}
}

func TestInFlightReleasedOnBodyClose(t *testing.T) {
	srv := idServer(t, "a")
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(addrOf(srv))})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://placeholder/", nil)
	resp, ep, err := c.RoundTrip(req, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := ep.InFlight(); n != 1 {
		t.Errorf("in flight before Close = %d, want 1", n)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp.Body.Close() // a second Close must not release twice
	if n := ep.InFlight(); n != 0 {
		t.Errorf("in flight after Close = %d, want 0", n)
	}
}

func TestSwitchingProtocolsBodyStaysWritable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	}))
	t.Cleanup(srv.Close)
	c := oneCluster(t, Options{}, v1alpha1.ClusterSpec{Endpoints: endpoints(addrOf(srv))})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://placeholder/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, ep, err := c.RoundTrip(req, "")
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not writable", resp.Body)
	}
	io.WriteString(rw, "hi\n")
	got, _ := io.ReadAll(rw)
	rw.Close()
	if string(got) != "echo hi\n" || ep.InFlight() != 0 {
		t.Errorf("got %q, in flight %d", got, ep.InFlight())
	}
}

// TestConcurrentRoundTrips hammers balancing, accounting and health
// checking together under -race.
func TestConcurrentRoundTrips(t *testing.T) {
	var addrs []string
	for i := range 3 {
		addrs = append(addrs, addrOf(idServer(t, fmt.Sprint(i))))
	}
	for _, policy := range []string{v1alpha1.BalanceRoundRobin, v1alpha1.BalanceLeastRequest, v1alpha1.BalanceRandom, v1alpha1.BalanceWeighted} {
		t.Run(policy, func(t *testing.T) {
			r := newTestRegistry(t, Options{}, clusterCfg("up", v1alpha1.ClusterSpec{
				Balancing:   policy,
				Endpoints:   endpoints(addrs...),
				HealthCheck: &v1alpha1.HealthCheck{Path: "/health", Interval: v1alpha1.D(5 * time.Millisecond), Timeout: v1alpha1.D(time.Second), UnhealthyThreshold: 2, HealthyThreshold: 1},
			}))
			startRegistry(t, r)
			c, _ := r.Lookup("up")
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() {
					for range 40 {
						if _, _, err := send(t, c, http.MethodPost, "x", ""); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for _, e := range c.Endpoints() {
				if n := e.InFlight(); n != 0 {
					t.Errorf("endpoint %s: %d in flight", e.Address(), n)
				}
			}
		})
	}
}
