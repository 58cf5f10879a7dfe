package config

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// Config is the whole proxy configuration file.
type Config struct {
	Listen string        `yaml:"listen"` // default ":3000"
	Policy policy.Config `yaml:"policy"`
	Audit  Audit         `yaml:"audit"`
	Limits Limits        `yaml:"limits"`
	// TLS is the mTLS listener. Absent, the proxy still requires client
	// certificates: it makes a development CA in StateDir and serves a
	// certificate from it (plain HTTP only with --insecure-plaintext).
	TLS *TLS `yaml:"tls"`
	// Secrets are the real credentials the proxy injects for placeholders.
	Secrets secrets.Config `yaml:"secrets"`
	// Intercept is TLS interception of CONNECT tunnels.
	Intercept Intercept `yaml:"intercept"`
	// Roles give agents, by their certificate's names, their own policy,
	// limits, credentials and dlp; the top-level policy, limits and dlp
	// are the role "default" for everyone else.
	Roles []Role `yaml:"roles"`
	// DefaultRole is the role of identities no role matches: "default"
	// (the top-level sections), or the name of a role.
	DefaultRole string `yaml:"default_role"`
	// DLP is the default role's outbound scanning.
	DLP DLP `yaml:"dlp"`
	// Metrics is an extra listener for Prometheus inside a cluster.
	Metrics Metrics `yaml:"metrics"`
	// StateDir holds what the proxy creates for itself (the development
	// CA, its server certificate); "" means DefaultStateDir().
	StateDir string `yaml:"state_dir"`

	// name and lines remember where the values came from, so that Validate
	// can point at the offending line of the file.
	name  string
	lines map[string]int
}

// Version names this configuration as the proxy runs it: the first 12 hex
// digits of the SHA-256 of its YAML form, defaults and command-line
// overrides included, so the same settings give the same version however
// the file was written. Audit records and /health carry it.
func (c *Config) Version() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		// Every field of Config marshals; this cannot happen.
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Metrics is where /metrics is served, in plain HTTP without client
// certificates, for the operator's scraper (a loopback address, or a
// NetworkPolicy limiting who reaches it). It is the only place: on the
// proxy's own port the metrics would tell every agent about all the others.
type Metrics struct {
	Listen string `yaml:"listen"` // "" = not served
}

// Audit says where the audit log goes.
type Audit struct {
	File       string `yaml:"file"`        // "" = no file
	Stdout     bool   `yaml:"stdout"`      // default true
	MaxSizeMB  int    `yaml:"max_size_mb"` // rotate at this size, default 100
	MaxBackups int    `yaml:"max_backups"` // rotated files kept, default 5
}

// TLS names the proxy's own certificate and the CA its clients' certificates
// must come from.
type TLS struct {
	Cert     string `yaml:"cert"`      // the proxy's certificate chain (PEM), reloaded when renewed
	Key      string `yaml:"key"`       // its private key (PEM)
	ClientCA string `yaml:"client_ca"` // CA certificates (PEM) client certificates must chain to
	// AllowedIdentities are globs over a client certificate's common name
	// and SANs; default ["*"] (any certificate from ClientCA).
	AllowedIdentities []string `yaml:"allowed_identities"`
}

// Intercept says which tunnels the proxy terminates (besides those to a
// credential's hosts, which always are) and with which CA.
type Intercept struct {
	// Hosts are host globs inspected although no credential needs them.
	Hosts []string `yaml:"hosts"`
	// CACert and CAKey are the interception CA (e.g. an intermediate from
	// Step-CA); empty means one created in the state directory.
	CACert string `yaml:"ca_cert"`
	CAKey  string `yaml:"ca_key"`
	// UpstreamCA are extra CA files trusted for upstream TLS, besides the
	// system's roots.
	UpstreamCA []string `yaml:"upstream_ca"`
}

// Identities is AllowedIdentities with its default.
func (t *TLS) Identities() []string {
	if t == nil || t.AllowedIdentities == nil {
		return []string{"*"}
	}
	return t.AllowedIdentities
}

// Limits protects the proxy from its clients.
type Limits struct {
	RatePerSecond float64 `yaml:"rate_per_second"` // per client token bucket; default 100; 0 disables
	RateBurst     int     `yaml:"rate_burst"`      // default 200
	MaxTunnels    int     `yaml:"max_tunnels"`     // concurrent CONNECT tunnels, default 512
	// MaxTunnelsPerIdentity is one client's share of them (by certificate
	// identity, else address), default 64.
	MaxTunnelsPerIdentity int `yaml:"max_tunnels_per_identity"`
	// MaxRequestsPerIdentity bounds the requests one client has in flight
	// at once (forward, X-Target-URL and inside intercepted tunnels),
	// default 256: the rate limit bounds how many start, not how long each
	// lasts, and a streamed answer can last minutes.
	MaxRequestsPerIdentity int      `yaml:"max_requests_per_identity"`
	MaxHeaderBytes         int      `yaml:"max_header_bytes"`    // default 32768
	ReadHeaderTimeout      Duration `yaml:"read_header_timeout"` // default 30s
	IdleTimeout            Duration `yaml:"idle_timeout"`        // default 5m (no bytes either way on a conn/stream)
	ShutdownGrace          Duration `yaml:"shutdown_grace"`      // default 10s
}

// Default returns the configuration used when no file is given, with every
// field filled. Each call returns a fresh value that the caller may change.
func Default() *Config {
	return &Config{
		Listen:      ":3000",
		DefaultRole: DefaultRoleName,
		DLP:         DLP{Mode: DLPOff},
		Policy:      policy.Default(),
		Audit: Audit{
			Stdout:     true,
			MaxSizeMB:  100,
			MaxBackups: 5,
		},
		Limits: Limits{
			RatePerSecond:          100,
			RateBurst:              200,
			MaxTunnels:             512,
			MaxTunnelsPerIdentity:  64,
			MaxRequestsPerIdentity: 256,
			MaxHeaderBytes:         32 << 10,
			ReadHeaderTimeout:      Duration(30 * time.Second),
			IdleTimeout:            Duration(5 * time.Minute),
			ShutdownGrace:          Duration(10 * time.Second),
		},
	}
}
