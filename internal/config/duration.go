package config

import (
	"time"

	"github.com/slapenir/slapenir/internal/yamlcheck"
	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as Go writes durations
// (yamlcheck.ParseDuration: "30s", "5m", never a bare number); its own
// type so that a configuration can be written back out the same way.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as it would be written in the file.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := yamlcheck.ParseDuration(n)
	*d = Duration(v)
	return err
}

// MarshalYAML writes the duration back as "30s", so a Config can be dumped.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
