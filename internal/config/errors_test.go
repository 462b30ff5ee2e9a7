package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"every part", Error{File: "a.yaml", Line: 3, Kind: "Route", Name: "chat", Field: "spec.cluster", Message: "cluster \"x\" does not exist", Hint: "known clusters: y"},
			`a.yaml:3: Route/chat: spec.cluster: cluster "x" does not exist (known clusters: y)`},
		{"no resource", Error{File: "a.yaml", Line: 7, Message: "invalid YAML: did not find expected key"},
			"a.yaml:7: invalid YAML: did not find expected key"},
		{"no line", Error{File: "dir", Message: "directory has no *.yaml or *.yml files"},
			"dir: directory has no *.yaml or *.yml files"},
		{"kind without name", Error{File: "a.yaml", Line: 1, Kind: "Cluster", Field: "metadata.name", Message: "a name is required"},
			"a.yaml:1: Cluster: metadata.name: a name is required"},
		{"no file", Error{Message: "no configuration files given", Hint: "name one"},
			"no configuration files given (name one)"},
		{"empty message", Error{File: "a.yaml", Line: 2}, "a.yaml:2: invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestErrorListSortsAndUnwraps(t *testing.T) {
	list := ErrorList{
		{File: "b.yaml", Line: 1, Message: "b1"},
		{File: "a.yaml", Line: 9, Message: "a9"},
		{File: "a.yaml", Line: 2, Message: "a2-first"},
		{File: "a.yaml", Line: 2, Message: "a2-second"},
	}
	want := "a.yaml:2: a2-first\na.yaml:2: a2-second\na.yaml:9: a9\nb.yaml:1: b1"
	if got := list.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if list[0].Message != "b1" {
		t.Error("Error() reordered the list itself")
	}
	var err error = fmt.Errorf("reload: %w", list)
	var one *Error
	if !errors.As(err, &one) || one.Message != "b1" {
		t.Errorf("errors.As(*Error) = %v", one)
	}
	var back ErrorList
	if !errors.As(err, &back) || len(back) != 4 {
		t.Errorf("errors.As(ErrorList) = %v", back)
	}
}

// Secret values never appear in messages, whatever is wrong with them.
func TestNoSecretsInErrors(t *testing.T) {
	_, err := Load("testdata/errors/secrets.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	data, _ := os.ReadFile("testdata/errors/secrets.yaml")
	if !strings.Contains(string(data), "hunter2") {
		t.Fatal("test input changed")
	}
	for _, secret := range []string{"hunter2", "TOPSECRET", "pa55word", "trace-pass", "r3dis-secret"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error output contains %q:\n%v", secret, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n < 7 {
		t.Errorf("only %d errors reported:\n%v", n, err)
	}
}
