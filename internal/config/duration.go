package config

import (
	"fmt"
	"time"

	"github.com/slapenir/slapenir/internal/yamlcheck"
	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as Go writes durations:
// "30s", "5m", "1h30m". A bare number is refused: "30" could mean seconds
// or nanoseconds, and guessing wrong makes a timeout useless.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as it would be written in the file.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or 5m, got %s", yamlcheck.Describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 5m, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as "30s", so a Config can be dumped.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
