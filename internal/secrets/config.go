package secrets

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/inject"
	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// Config is the "secrets:" section of the proxy configuration. Its zero value
// is valid: no credentials, unlocked memory tolerated.
type Config struct {
	// RequireLockedMemory refuses to start when the values cannot be kept in
	// locked memory (RLIMIT_MEMLOCK too low and no CAP_IPC_LOCK). The
	// default, false, warns and keeps them in unlocked memory.
	RequireLockedMemory bool `yaml:"require_locked_memory"`
	// Dotenv is a .env file consulted for a credential's env variable when
	// the proxy's environment does not have it.
	Dotenv string `yaml:"dotenv"`
	// Credentials are the real keys the proxy injects.
	Credentials []CredentialConfig `yaml:"credentials"`
}

// CredentialConfig is one entry of secrets.credentials. Exactly one of Env
// and File names where the value comes from.
type CredentialConfig struct {
	Name string `yaml:"name"` // "github": letters, digits, "_" and "-"
	// Env is the variable holding the value in the proxy's environment (or
	// in the dotenv file): "GITHUB_TOKEN".
	Env string `yaml:"env"`
	// File holds the value, e.g. a Docker secret "/run/secrets/github_token";
	// trailing white space and line breaks are dropped.
	File string `yaml:"file"`
	// Hosts are the destinations the value may be sent to, as host globs
	// with an optional port: "github.com", "*.githubusercontent.com:443".
	// A host without a port is any port of it, but only over TLS (an https
	// target, or a tunnel the proxy intercepts); a port binds it to that
	// port.
	Hosts []string `yaml:"hosts"`
	// PlaintextHTTP lets the value also be sent over plain http to its
	// hosts, where anyone on the path reads it: for a local test server or
	// an Ollama on loopback, never for a service on the internet. The
	// default, false, sends it only inside TLS.
	PlaintextHTTP bool `yaml:"plaintext_http"`
	// Placeholder is what the agent sends instead of the value; empty means
	// DUMMY_<NAME>, or a generated look-alike when FormatPreserving.
	Placeholder string `yaml:"placeholder"`
	// FormatPreserving generates a placeholder with the value's known prefix
	// ("ghp_", "sk-", "xoxb-", "AKIA"…), length and alphabet, for SDKs that
	// check a token's shape.
	FormatPreserving bool `yaml:"format_preserving"`
	// AgentEnv is the variable the agent exports the placeholder as
	// ("GITHUB_TOKEN"); empty means the same as Env.
	AgentEnv string `yaml:"agent_env"`
	// Inject lists where in a request the placeholder is replaced: header
	// (any request header, Authorization Bearer and Basic included), query,
	// path, body. Empty means [header]: a placeholder in the URL or the body
	// lets the agent choose where the real value is written, and so read it
	// back (a stored note, a webhook URL on another host).
	Inject []string `yaml:"inject"`
}

// Problem is one thing wrong with a Config. Path is the dotted path of the
// offending value ("secrets.credentials[1].hosts[0]"), in the form
// internal/config uses to find its line in the file. It is the
// configuration's one problem type; its Error is "path: message".
type Problem = yamlcheck.Problem

var (
	namePattern        = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	envPattern         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	placeholderPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// Validate returns every problem in c, or nil. It checks what can be checked
// without reading any value; Open checks the rest (missing sources,
// format-preserving placeholders, placeholders containing a value).
func (c Config) Validate() []Problem {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]string{}
	agentEnvs := map[string]string{}
	placeholders := map[string]string{}
	for i, cr := range c.Credentials {
		p := fmt.Sprintf("secrets.credentials[%d]", i)
		switch {
		case cr.Name == "":
			add(p+".name", "missing; every credential needs a name such as \"github\"")
		case !namePattern.MatchString(cr.Name):
			add(p+".name", "%q is not a name (use letters, digits, \"_\" and \"-\", starting with a letter)", cr.Name)
		default:
			key := strings.ToUpper(strings.ReplaceAll(cr.Name, "-", "_"))
			if prev, dup := names[key]; dup {
				add(p+".name", "%q is the same name as %s (names are compared ignoring case, and \"-\" equals \"_\")", cr.Name, prev)
			} else {
				names[key] = p
			}
		}
		switch {
		case cr.Env == "" && cr.File == "":
			add(p, "has neither env nor file; say where the value comes from (env: GITHUB_TOKEN or file: /run/secrets/github_token)")
		case cr.Env != "" && cr.File != "":
			add(p, "has both env and file; keep one")
		case cr.Env != "" && !envPattern.MatchString(cr.Env):
			add(p+".env", "%q is not an environment variable name (letters, digits and \"_\", not starting with a digit)", cr.Env)
		}
		if len(cr.Hosts) == 0 {
			add(p+".hosts", "is empty; list the hosts this credential may be sent to, e.g. [\"api.github.com\"]")
		}
		for j, h := range cr.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			g, err := hostport.ParseGlob(h)
			switch {
			case err != nil:
				add(hp, "bad host glob %q: %v", h, errors.Unwrap(err))
			case g.Any:
				add(hp, "%q would send the credential to every host; name the hosts it belongs to", h)
			}
		}
		switch {
		case cr.Placeholder != "" && cr.FormatPreserving:
			add(p+".placeholder", "is set together with format_preserving: true; keep one (format_preserving generates the placeholder)")
		case cr.Placeholder != "" && len(cr.Placeholder) < inject.MinPlaceholderLen:
			add(p+".placeholder", "%q is shorter than %d characters and could occur in ordinary traffic", cr.Placeholder, inject.MinPlaceholderLen)
		case cr.Placeholder != "" && !placeholderPattern.MatchString(cr.Placeholder):
			add(p+".placeholder", "%q may only contain letters, digits, \"_\", \".\" and \"-\" (it must survive URLs, headers and JSON unchanged)", cr.Placeholder)
		}
		if ph := staticPlaceholder(cr); ph != "" {
			if prev, dup := placeholders[ph]; dup {
				add(p+".placeholder", "%q is also the placeholder of %s; each credential needs its own", ph, prev)
			} else {
				placeholders[ph] = p
			}
		}
		seen := map[Location]bool{}
		for j, l := range cr.Inject {
			lp := fmt.Sprintf("%s.inject[%d]", p, j)
			switch loc := Location(l); {
			case !slices.Contains(Locations, loc):
				add(lp, "%q is not a place to inject into (use header, query, path or body)", l)
			case seen[loc]:
				add(lp, "%q is listed twice", l)
			default:
				seen[loc] = true
			}
		}
		if cr.AgentEnv != "" && !envPattern.MatchString(cr.AgentEnv) {
			add(p+".agent_env", "%q is not an environment variable name (letters, digits and \"_\", not starting with a digit)", cr.AgentEnv)
		}
		if ae := cr.agentEnv(); ae != "" {
			if prev, dup := agentEnvs[ae]; dup {
				add(p+".agent_env", "%q is also exported by %s; the agent can hold only one value per variable", ae, prev)
			} else {
				agentEnvs[ae] = p
			}
		}
	}
	return probs
}

// Location is a part of a request a placeholder can be replaced in.
type Location string

const (
	InHeader Location = "header"
	InQuery  Location = "query"
	InPath   Location = "path"
	InBody   Location = "body"
)

// Locations are every Location, in the order a request has them.
var Locations = []Location{InPath, InQuery, InHeader, InBody}

// InjectIn is where cr's placeholder is replaced: the configured locations,
// or header alone.
func (cr CredentialConfig) InjectIn() []Location {
	if len(cr.Inject) == 0 {
		return []Location{InHeader}
	}
	out := make([]Location, len(cr.Inject))
	for i, l := range cr.Inject {
		out[i] = Location(l)
	}
	return out
}

// describe is what may be known of cr without its value; Placeholder is
// set only when it does not derive from the value (staticPlaceholder).
// cr must have passed Validate.
func (cr CredentialConfig) describe() Credential {
	c := Credential{Name: cr.Name, AgentEnv: cr.agentEnv(), Inject: cr.InjectIn(), Placeholder: staticPlaceholder(cr), PlaintextHTTP: cr.PlaintextHTTP}
	for _, h := range cr.Hosts {
		g, _ := hostport.ParseGlob(h) // checked by Validate
		c.Hosts = append(c.Hosts, g)
	}
	return c
}

// Describe lists the configured credentials as the proxy knows them, without
// reading any value: for explaining a configuration where the secrets are
// not at hand. A format-preserving placeholder, which derives from the
// value, is left empty.
func (c Config) Describe() ([]Credential, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	out := make([]Credential, len(c.Credentials))
	for i, cr := range c.Credentials {
		out[i] = cr.describe()
	}
	return out, nil
}

func (cr CredentialConfig) agentEnv() string {
	if cr.AgentEnv != "" {
		return cr.AgentEnv
	}
	return cr.Env
}

// staticPlaceholder is the placeholder known without reading the value: the
// configured one or the default; "" for a format-preserving one.
func staticPlaceholder(cr CredentialConfig) string {
	switch {
	case cr.FormatPreserving:
		return ""
	case cr.Placeholder != "":
		return cr.Placeholder
	default:
		return DefaultPlaceholder(cr.Name)
	}
}

// check returns c's problems as one error, or nil.
func (c Config) check() error {
	probs := c.Validate()
	if len(probs) == 0 {
		return nil
	}
	msgs := make([]string, len(probs))
	for i, p := range probs {
		msgs[i] = p.Error()
	}
	return fmt.Errorf("secrets: invalid configuration:\n%s", strings.Join(msgs, "\n"))
}
