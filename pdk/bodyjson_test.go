package pdk

import (
	"testing"

	"github.com/tidwall/gjson"
)

func TestBodyJSONHelpers(t *testing.T) {
	if !IsJSONObject([]byte(" \n{}")) || IsJSONObject([]byte(" []")) || IsJSONObject(nil) {
		t.Error("IsJSONObject")
	}
	if !MayContainJSONString([]byte(`{"a":"template"}`), `"template"`) ||
		!MayContainJSONString([]byte(`{"a":"te\u006dplate"}`), `"template"`) ||
		MayContainJSONString([]byte(`{"a":"templates"}`), `"template"`) {
		t.Error("MayContainJSONString")
	}
	if !ContentTypeIsJSON("application/vnd.api+JSON; charset=utf-8") || ContentTypeIsJSON("text/plain") || ContentTypeIsJSON("js") {
		t.Error("ContentTypeIsJSON")
	}
	body := []byte(`{"model": "a", "x": [1]}`)
	out, ok := SpliceValue(body, gjson.GetBytes(body, "model"), []byte(`"bb"`))
	if !ok || string(out) != `{"model": "bb", "x": [1]}` {
		t.Errorf("SpliceValue: %s %v", out, ok)
	}
	if _, ok := SpliceValue(body, gjson.GetBytes(body, "missing"), []byte(`1`)); ok {
		t.Error("SpliceValue of a missing value succeeded")
	}
	if _, ok := SpliceValue(body, gjson.Result{Raw: `"zz"`, Index: 10}, []byte(`1`)); ok {
		t.Error("SpliceValue at a position that does not hold the value succeeded")
	}
}
