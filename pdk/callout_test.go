package pdk_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

type calloutConfig struct {
	URL       string `json:"url"`
	TimeoutMS int    `json:"timeout_ms"`
	Panic     bool   `json:"panic"`

	client pdk.HTTPClient
}

func (c *calloutConfig) Validate() error {
	c.client = pdk.HTTPClient{Cluster: pdk.FQDNCluster("auth.dns", 8443, "auth.example.com")}
	return nil
}

// caller sends a POST callout from request headers and resumes from the
// callback, recording what it got.
var caller = pdk.Plugin[*calloutConfig]{
	Name:  "caller",
	Parse: pdk.DecodeConfig[calloutConfig],
	OnRequestHeaders: func(ctx *pdk.Context, cfg *calloutConfig) pdk.Action {
		err := cfg.client.Call("POST", cfg.URL, [][2]string{{":path", "/ignored"}, {"x-key", "k"}}, []byte("ping"), func(r *pdk.HTTPResponse) {
			ct, _ := r.Header("content-type")
			record("response status=%d body=%q content-type=%q phase=%s", r.Status, r.Body, ct, ctx.Phase())
			if cfg.Panic {
				panic("callback panic")
			}
			_ = ctx.ResumeRequest()
		}, time.Duration(cfg.TimeoutMS)*time.Millisecond)
		if err != nil {
			record("dispatch error %v", err)
			return pdk.Continue
		}
		return pdk.StopAllWatermark
	},
}

func TestHTTPCallout(t *testing.T) {
	cases := []struct {
		name        string
		config      string
		respHeaders [][2]string
		respBody    string
		wantPath    string
		wantAuth    string
		wantEvent   string
	}{
		{name: "path URL, default timeout, 200", config: `{"url":"/v1/check?x=1"}`,
			respHeaders: pdktest.Headers(":status", "200", "content-type", "application/json"), respBody: `{"ok":true}`,
			wantPath: "/v1/check?x=1", wantAuth: "auth.example.com",
			wantEvent: `response status=200 body="{\"ok\":true}" content-type="application/json" phase=request headers`},
		{name: "absolute URL sets the authority", config: `{"url":"http://other.host:81/a/b","timeout_ms":1500}`,
			respHeaders: pdktest.Headers(":status", "404"),
			wantPath:    "/a/b", wantAuth: "other.host:81",
			wantEvent: `response status=404 body="" content-type="" phase=request headers`},
		{name: "no :status (failed, reset, timed out) is 502", config: `{"url":"check"}`,
			wantPath: "/check", wantAuth: "auth.example.com",
			wantEvent: `response status=502 body="" content-type="" phase=request headers`},
		{name: "unparsable :status is 500", config: `{"url":"/"}`, respHeaders: pdktest.Headers(":status", "abc"),
			wantPath: "/", wantAuth: "auth.example.com",
			wantEvent: `response status=500 body="" content-type="" phase=request headers`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events = nil
			h := pdktest.New(t, caller.VMContext(), tc.config)
			if !h.Start() {
				t.Fatal("configure failed")
			}
			id := h.InitializeHttpContext()
			if a := h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), true); a != types.HeaderStopAllIterationAndWatermark {
				t.Fatalf("action %v; events %q", a, events)
			}
			calls := h.GetCalloutAttributesFromContext(id)
			if len(calls) != 1 {
				t.Fatalf("%d callouts", len(calls))
			}
			c := calls[0]
			if c.Upstream != "outbound|8443||auth.dns" {
				t.Errorf("cluster %q", c.Upstream)
			}
			want := pdktest.Headers("x-key", "k", ":method", "POST", ":path", tc.wantPath, ":authority", tc.wantAuth)
			if !slices.Equal(c.Headers, want) {
				t.Errorf("headers %q, want %q", c.Headers, want)
			}
			if string(c.Body) != "ping" {
				t.Errorf("body %q", c.Body)
			}
			h.CallOnHttpCallResponse(c.CalloutID, tc.respHeaders, nil, []byte(tc.respBody))
			wantEvents(t, tc.wantEvent)
			if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
				t.Errorf("stream not resumed: %v", a)
			}
		})
	}
}

func TestHTTPCalloutPanicResumesTheRequest(t *testing.T) {
	events = nil
	h := pdktest.New(t, caller.VMContext(), `{"url":"/","panic":true}`)
	if !h.Start() {
		t.Fatal("configure failed")
	}
	id := h.InitializeHttpContext()
	h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), true)
	h.CallOnHttpCallResponse(h.GetCalloutAttributesFromContext(id)[0].CalloutID, pdktest.Headers(":status", "200"), nil, nil)
	if a := h.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
		t.Errorf("a panicking callback left the request paused (%v)", a)
	}
	if logs := strings.Join(h.GetErrorLogs(), "\n"); !strings.Contains(logs, "recovered from panic in http callout response: callback panic") {
		t.Errorf("error logs:\n%s", logs)
	}
}

func TestClusterNames(t *testing.T) {
	cases := []struct {
		got        pdk.Cluster
		name, host string
	}{
		{pdk.FQDNCluster("llm.dns", 443, ""), "outbound|443||llm.dns", "llm.dns"},
		{pdk.FQDNCluster("llm.dns", 443, "api.llm.com"), "outbound|443||llm.dns", "api.llm.com"},
		{pdk.StaticCluster("redis", 80), "outbound|80||redis.static", "redis"},
		{pdk.DNSCluster("search", 443, "www.googleapis.com"), "outbound|443||search.dns", "www.googleapis.com"},
		{pdk.K8sCluster("svc", "", 8080, ""), "outbound|8080||svc.default.svc.cluster.local", "svc.default.svc.cluster.local"},
		{pdk.K8sCluster("svc", "ns", 8080, "v1"), "outbound|8080|v1|svc.ns.svc.cluster.local", "svc.ns.svc.cluster.local"},
	}
	for _, tc := range cases {
		if tc.got.Name != tc.name || tc.got.Host != tc.host {
			t.Errorf("got %+v, want %s / %s", tc.got, tc.name, tc.host)
		}
	}
}
