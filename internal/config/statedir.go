package config

import (
	"os"
	"path/filepath"
)

// DefaultStateDir is where the proxy and `slapenir certs dev-issue` keep
// what they create when no state_dir is configured: $SLAPENIR_STATE_DIR,
// else /var/lib/slapenir for root, else $XDG_STATE_HOME/slapenir (or
// ~/.local/state/slapenir), so a first run works without root.
func DefaultStateDir() string {
	if d := os.Getenv("SLAPENIR_STATE_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/slapenir"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "slapenir")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "slapenir")
	}
	return filepath.Join(os.TempDir(), "slapenir-state")
}

// State is the state directory in force: StateDir or the default.
func (c *Config) State() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return DefaultStateDir()
}
