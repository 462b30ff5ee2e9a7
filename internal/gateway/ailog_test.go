package gateway

import "testing"

func TestAILogJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain object", `{"model":"gpt"}`, `{"model":"gpt"}`},
		{"Higress escaped form", `{\"model\":\"gpt\",\"input_token\":5}`, `{"model":"gpt","input_token":5}`},
		{"escaped with nested quotes", `{\"answer\":\"say \\\"hi\\\"\"}`, `{"answer":"say \"hi\""}`},
		{"not JSON at all", `model=gpt`, `model=gpt`},
		{"escaped but not JSON inside", `abc\"def`, `abc\"def`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(aiLogJSON([]byte(tc.in))); got != tc.want {
				t.Fatalf("aiLogJSON(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
