package secrets

import (
	"github.com/slapenir/slapenir/internal/hostport"
)

// Credential is what the rest of the proxy may know about a credential:
// everything but its value, which stays in the vault.
type Credential struct {
	Name        string
	AgentEnv    string // the variable the agent exports Placeholder as; "" for none
	Placeholder string
	Hosts       []hostport.Glob
	// Inject is where in a request the placeholder is replaced (never
	// empty: header by default).
	Inject []Location
	// PlaintextHTTP says the value may also go to its hosts over plain
	// http; otherwise only inside TLS (see MayInject).
	PlaintextHTTP bool
	// Source says where the value was read from ("file \"/run/secrets/x\"",
	// "environment variable GITHUB_TOKEN", ".env file \"/app/.env\" line 3"),
	// for check-config and startup logs.
	Source string
}

// Matches reports whether the credential may be sent to host:port, with
// host normalised as hostport.Parse returns it. The caller passes the real
// destination (target URL host, CONNECT authority and SNI), never an inner
// Host header.
func (c Credential) Matches(host string, port int) bool {
	for _, g := range c.Hosts {
		if g.Match(host, port) {
			return true
		}
	}
	return false
}

// MayInject reports whether the value may be sent to host:port over the
// upstream connection the proxy makes: one of its hosts (Matches), and over
// TLS (tls: an https target or an intercepted tunnel, whose upstream leg is
// TLS too) unless the credential allows plain http. A value sent in the
// clear is read by anyone on the path, so binding it to a host name alone
// would not keep it for that host.
func (c Credential) MayInject(host string, port int, tls bool) bool {
	return c.Matches(host, port) && (tls || c.PlaintextHTTP)
}

// InjectsIn reports whether the placeholder is replaced in loc.
func (c Credential) InjectsIn(loc Location) bool {
	for _, l := range c.Inject {
		if l == loc {
			return true
		}
	}
	return false
}

// Placeholder is one line of GET /placeholders: what the agent's init
// exports (Env=Placeholder) so that its tools send the placeholder.
type Placeholder struct {
	Name        string `json:"name"`
	Env         string `json:"env,omitempty"`
	Placeholder string `json:"placeholder"`
}
