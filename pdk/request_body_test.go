package pdk_test

import (
	"testing"

	"github.com/sluicegw/sluice/pdk"
	"github.com/sluicegw/sluice/pdk/pdktest"
)

func TestHasRequestBody(t *testing.T) {
	for _, tc := range []struct {
		name        string
		headersEOS  bool
		wantHasBody bool
	}{
		{"headers end the stream", true, false},
		{"a body follows", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *bool
			p := pdk.Plugin[*struct{}]{
				Name: "body-probe",
				OnRequestHeaders: func(ctx *pdk.Context, _ *struct{}) pdk.Action {
					b := ctx.HasRequestBody()
					got = &b
					return pdk.Continue
				},
			}
			h := pdktest.New(t, p.VMContext(), `{}`)
			if !h.Start() {
				t.Fatal(h.GetErrorLogs())
			}
			id := h.InitializeHttpContext()
			h.CallOnRequestHeaders(id, pdktest.RequestHeaders("a.org", "/"), tc.headersEOS)
			if got == nil || *got != tc.wantHasBody {
				t.Errorf("HasRequestBody = %v, want %v", got, tc.wantHasBody)
			}
		})
	}
}
