package pdk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

type inner struct {
	Name  string `json:"name"`
	Count int8   `json:"count"`
}

type Embedded struct {
	Shared string `json:"shared"`
}

type testConfig struct {
	Embedded
	Title   string            `json:"title"`
	Enabled bool              `json:"enabled"`
	Port    uint16            `json:"port"`
	Ratio   float64           `json:"ratio"`
	Items   []inner           `json:"items"`
	Labels  map[string]string `json:"labels"`
	Ptr     *inner            `json:"ptr"`
	Free    any               `json:"free"`
	Ignored string            `json:"-"`
	//lint:ignore U1000 present to show unexported fields are not configurable
	hidden string
}

func (c *testConfig) SetDefaults() { c.Title = "default title"; c.Port = 8080 }

func (c *testConfig) Validate() error {
	var errs pdk.ConfigErrors
	for i, it := range c.Items {
		if it.Name == "" {
			errs = append(errs, pdk.Errorf("items["+string(rune('0'+i))+"].name", "must not be empty"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func TestDecodeConfig(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		errors []string // every error line, in order; nil: success
		check  func(t *testing.T, c *testConfig)
	}{
		{name: "empty input is {} with defaults", in: "  ", check: func(t *testing.T, c *testConfig) {
			if c.Title != "default title" || c.Port != 8080 {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "fields decode, defaults stay for unset ones",
			in: `{"enabled":true,"ratio":0.5,"items":[{"name":"a","count":3}],"labels":{"k":"v"},"ptr":{"name":"p"},"free":[1,"x"],"shared":"s"}`,
			check: func(t *testing.T, c *testConfig) {
				if !c.Enabled || c.Ratio != 0.5 || len(c.Items) != 1 || c.Items[0].Count != 3 || c.Labels["k"] != "v" ||
					c.Ptr == nil || c.Ptr.Name != "p" || c.Shared != "s" || c.Title != "default title" {
					t.Errorf("decoded %+v", c)
				}
			}},
		{name: "null leaves the zero value", in: `{"items":null,"ptr":null,"title":null}`, check: func(t *testing.T, c *testConfig) {
			if c.Items != nil || c.Ptr != nil || c.Title != "default title" {
				t.Errorf("decoded %+v", c)
			}
		}},
		{name: "every problem at once, each naming its field",
			in: `{"title":1,"enabled":"yes","port":70000,"items":[{"name":"a","count":200},{"nam":"b"}],"labels":{"k":2},"extra":true}`,
			errors: []string{
				`enabled: must be true or false, not a string`,
				`extra: unknown field (known fields: enabled, free, items, labels, port, ptr, ratio, shared, title)`,
				`items[0].count: must be an integer that fits in 8 bits, not 200`,
				`items[1].nam: unknown field (did you mean "name"?)`,
				`labels.k: must be a string, not the number 2`,
				`port: must be a non-negative integer that fits in 16 bits, not 70000`,
				`title: must be a string, not the number 1`,
			}},
		{name: "field names are case-sensitive", in: `{"Title":"x"}`, errors: []string{`Title: unknown field (did you mean "title"?)`}},
		{name: "fractional number for an integer", in: `{"port":1.5}`, errors: []string{`port: must be a non-negative integer that fits in 16 bits, not 1.5`}},
		{name: "list expected", in: `{"items":{"name":"a"}}`, errors: []string{`items: must be a list, not an object`}},
		{name: "object expected", in: `{"ptr":"x"}`, errors: []string{`ptr: must be an object, not a string`}},
		{name: "validate runs after decoding", in: `{"items":[{"name":""}]}`, errors: []string{`items[0].name: must not be empty`}},
		{name: "not JSON", in: `{"title": }`, errors: []string{`not valid JSON: invalid character '}' looking for beginning of value (at byte 11)`}},
		{name: "trailing data", in: `{} {}`, errors: []string{`not valid JSON: unexpected data after the top-level value`}},
		{name: "top level must be an object", in: `[1]`, errors: []string{`must be an object, not a list`}},
		{name: "json:\"-\" and unexported fields are not configurable", in: `{"Ignored":"x","hidden":"y"}`, errors: []string{
			`Ignored: unknown field (known fields: enabled, free, items, labels, port, ptr, ratio, shared, title)`,
			`hidden: unknown field (known fields: enabled, free, items, labels, port, ptr, ratio, shared, title)`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := pdk.DecodeConfig[testConfig]([]byte(tc.in))
			if tc.errors == nil {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("no error; want:\n%s", strings.Join(tc.errors, "\n"))
			}
			var ce pdk.ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want pdk.ConfigErrors", err)
			}
			if got, want := err.Error(), strings.Join(tc.errors, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDecodeConfigAllowUnknownFields(t *testing.T) {
	c, err := pdk.DecodeConfigWith[testConfig]([]byte(`{"title":"t","future":1}`), pdk.DecodeOptions{AllowUnknownFields: true})
	if err != nil || c.Title != "t" {
		t.Fatalf("got %+v, %v", c, err)
	}
	if _, err := pdk.DecodeConfigWith[testConfig]([]byte(`{"title":1,"future":1}`), pdk.DecodeOptions{AllowUnknownFields: true}); err == nil ||
		err.Error() != "title: must be a string, not the number 1" {
		t.Errorf("type errors are still reported: %v", err)
	}
}

func TestFieldErrorsAndPrefix(t *testing.T) {
	err := errors.Join(pdk.Errorf("a", "bad"), pdk.ConfigErrors{pdk.Errorf("[1].b", "worse"), pdk.Errorf("", "whole")}, errors.New("plain"))
	got := pdk.PrefixErrors("redis", err).Error()
	want := "redis.a: bad\nredis[1].b: worse\nredis: whole\nredis: plain"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if pdk.PrefixErrors("x", nil) != nil || pdk.FieldErrors(nil) != nil {
		t.Error("nil must stay nil")
	}
}
