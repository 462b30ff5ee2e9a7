package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("1.5s",
// "300ms", "2m"). A bare integer is read as seconds.
type Duration struct {
	time.Duration
}

// D returns d as a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalYAML reads "1.5s" or a whole number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as \"5s\" or \"250ms\"")
	}
	return d.parse(n.Value)
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads the duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"5s\"")
	}
	return d.parse(s)
}

func (d *Duration) parse(s string) error {
	if v, err := time.ParseDuration(s); err == nil {
		if v < 0 {
			return fmt.Errorf("must not be negative, got %q", s)
		}
		d.Duration = v
		return nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && fmt.Sprint(secs) == s {
		if secs < 0 {
			return fmt.Errorf("must not be negative, got %q", s)
		}
		d.Duration = time.Duration(secs) * time.Second
		return nil
	}
	return fmt.Errorf("%q is not a duration (write e.g. \"5s\", \"250ms\", \"2m\")", s)
}
