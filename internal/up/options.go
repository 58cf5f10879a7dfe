package up

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Options are the inputs of Run. The zero value, with Out set, runs the
// embedded default: development CA, the Ollama found at $OLLAMA_HOST or the
// fake, a network namespace when root.
type Options struct {
	// StateDir holds everything up creates (CA, certificates, audit log,
	// service file). "" means $SLAPENIR_STATE_DIR, else a new temporary
	// directory removed at the end.
	StateDir string
	// ProxyConfig is a proxy configuration file to start from; "" uses the
	// embedded defaults. Its listen address, audit file, state dir and tls
	// section are replaced by up's; Ollama is added to its allow lists.
	ProxyConfig string
	// Unconfined runs the agent's processes in the host's network namespace
	// even as root (no veth, no enforce).
	Unconfined bool
	// CA is a running step-ca; its zero value means the development CA.
	CA StepCA
	// OllamaHost is the Ollama to use when it answers /api/tags (host:port,
	// as $OLLAMA_HOST); else a fake Ollama is started on loopback.
	OllamaHost string
	// Model is the model ollama-verify checks ($OLLAMA_MODEL).
	Model string
	// AgentName is the agent's certificate subject, its identity in the
	// proxy's audit log.
	AgentName string
	// Heartbeat is the placeholder agent's heartbeat interval (30s).
	Heartbeat time.Duration
	// Exe is the slapenir binary the agent environment runs; "" means this
	// process's own executable.
	Exe string
	// Out receives up's report and every part's prefixed output.
	Out io.Writer
	// Env is up's environment (os.Environ() when nil): the proxy gets all
	// of it (its credentials come from there); the agent environment only
	// the locale, time zone and terminal, and up's own variables.
	Env []string
}

// StepCA is a running step-ca to enroll with instead of the development CA.
type StepCA struct {
	URL          string // STEP_CA_URL, e.g. https://127.0.0.1:9000
	Provisioner  string // JWK provisioner (STEP_PROVISIONER, default agent-provisioner)
	PasswordFile string // the provisioner key's password
	Root         string // root certificate file; or Fingerprint
	Fingerprint  string // root SHA-256 (STEP_FINGERPRINT)
}

// enabled reports whether a step-ca was given.
func (c StepCA) enabled() bool { return c.URL != "" }

func (c StepCA) validate() error {
	if !c.enabled() {
		return nil
	}
	if c.PasswordFile == "" {
		return fmt.Errorf("up: a step-ca at %s needs the provisioner password to mint one-time tokens: give --ca-password-file (or $STEP_PASSWORD_FILE)", c.URL)
	}
	if c.Root == "" && c.Fingerprint == "" {
		return fmt.Errorf("up: a step-ca at %s must be trusted: give --ca-root FILE or $STEP_FINGERPRINT", c.URL)
	}
	return nil
}

func (o *Options) defaults() {
	if o.Model == "" {
		o.Model = "qwen2.5-coder:7b"
	}
	if o.AgentName == "" {
		o.AgentName = "agent"
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 30 * time.Second
	}
	if o.CA.enabled() && o.CA.Provisioner == "" {
		o.CA.Provisioner = "agent-provisioner"
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
}

// stateDir creates the state directory; remove reports whether up made a
// temporary one it must delete at the end.
func (o *Options) stateDir() (dir string, remove bool, err error) {
	dir = o.StateDir
	if dir == "" {
		dir = os.Getenv("SLAPENIR_STATE_DIR")
	}
	if dir == "" {
		dir, err = os.MkdirTemp("", "slapenir-up-")
		if err != nil {
			return "", false, fmt.Errorf("up: cannot create a temporary state directory: %w (set --state-dir)", err)
		}
		remove = true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("up: cannot create the state directory %s: %w", dir, err)
	}
	dir, err = filepath.Abs(dir)
	return dir, remove, err
}
