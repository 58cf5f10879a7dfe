package up

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Options are the inputs of Run. The zero value, with Out set, runs the
// embedded default: development CA, the Ollama found at $OLLAMA_HOST or the
// fake, a network namespace when root.
type Options struct {
	// StateDir holds everything up creates (CA, certificates, audit log,
	// service file) and keeps across runs. "" means $SLAPENIR_STATE_DIR,
	// else defaultStateDir(): ~/.local/state/slapenir/up, or
	// /var/lib/slapenir-up as root.
	StateDir string
	// Ephemeral uses a new temporary state directory instead, removed at
	// the end: nothing of the run is kept.
	Ephemeral bool
	// ProxyConfig is a proxy configuration file to start from; "" uses the
	// embedded defaults. Its listen address, audit file, state dir and tls
	// section are replaced by up's; Ollama is added to its allow lists.
	ProxyConfig string
	// Unconfined runs the agent's processes in the host's network namespace
	// even as root (no veth, no enforce).
	Unconfined bool
	// CA is a running step-ca; its zero value means the development CA.
	CA StepCA
	// OllamaHost is the Ollama to use when it answers /api/tags (host:port;
	// "" means $OLLAMA_HOST of Env); else a fake Ollama is started on
	// loopback. Model and the CA's fields are read from Env the same way
	// when empty (OLLAMA_MODEL, STEP_CA_URL, STEP_PROVISIONER,
	// STEP_PASSWORD_FILE, STEP_FINGERPRINT).
	OllamaHost string
	// Ollama says whether a real Ollama is searched for, the fake served
	// anyway, or the fake refused.
	Ollama OllamaChoice
	// Model is the model ollama-verify checks ($OLLAMA_MODEL).
	Model string
	// AgentName is the agent's certificate subject, its identity in the
	// proxy's audit log.
	AgentName string
	// Heartbeat is the placeholder agent's heartbeat interval (30s).
	Heartbeat time.Duration
	// Services is a service file for the agent environment's init instead
	// of the generated default services.
	Services string
	// Command, when set, runs as the agent in place of the heartbeat
	// placeholder (`up -- CMD ARGS`): as uid 1000 when root, with the
	// agent's environment, in its namespace and workspace, on Stdin, Stdout
	// and Stderr, once every service is ready; up stops when it exits, and
	// a non-zero exit comes back as *CommandExit. Shell does the same with
	// an interactive shell as the agent (`up --shell`).
	Command []string
	Shell   bool
	// Stdin, Stdout and Stderr are the command's terminal (this process's
	// when nil).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Foreground, when set, is told while the command runs (true) and when
	// it has exited (false): the terminal's Ctrl-C is the command's then,
	// and up's caller must not stop up for it.
	Foreground func(bool)
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

// defaults fills what was not given: from Env (the seed's variables, as up's
// caller read them, the root .env included) and then up's own defaults.
func (o *Options) defaults() {
	if o.Env == nil {
		o.Env = os.Environ()
	}
	for _, f := range []struct {
		field *string
		env   string
	}{
		{&o.OllamaHost, "OLLAMA_HOST"}, {&o.Model, "OLLAMA_MODEL"},
		{&o.CA.URL, "STEP_CA_URL"}, {&o.CA.Provisioner, "STEP_PROVISIONER"},
		{&o.CA.PasswordFile, "STEP_PASSWORD_FILE"}, {&o.CA.Fingerprint, "STEP_FINGERPRINT"},
	} {
		if *f.field == "" {
			*f.field = envValue(o.Env, f.env)
		}
	}
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
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}
