package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/slapenir/slapenir/internal/didyoumean"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// Validate checks every value and returns a *Problems listing all that are
// wrong, or nil. Values decoded from a file are reported with their line.
func (c *Config) Validate() error {
	v := validator{c: c, probs: &Problems{File: c.name}}
	v.listen()
	v.policyOf("policy", v.c.Policy)
	v.roles()
	v.audit()
	v.limits()
	v.tls()
	v.intercept()
	for _, p := range v.c.Secrets.Validate() {
		v.add(p.Path, "%s", p.Msg)
	}
	return v.probs.OrNil()
}

// CheckFiles reports every file the configuration names that is not there
// to read: the tls and intercept certificates and keys, the extra upstream
// CAs, the credentials' files. Validate judges values only; this looks at
// the machine, for check-config, so a missing key file fails the check
// instead of the proxy's start. It never reads a file's contents.
func (c *Config) CheckFiles() error {
	v := validator{c: c, probs: &Problems{File: c.name}}
	need := func(path, file string) {
		if file == "" {
			return
		}
		if _, err := os.Stat(file); err != nil {
			v.add(path, "%s cannot be read: %v", strconv.Quote(file), errors.Unwrap(err))
		}
	}
	if t := c.TLS; t != nil {
		need("tls.cert", t.Cert)
		need("tls.key", t.Key)
		need("tls.client_ca", t.ClientCA)
	}
	need("intercept.ca_cert", c.Intercept.CACert)
	need("intercept.ca_key", c.Intercept.CAKey)
	for i, f := range c.Intercept.UpstreamCA {
		need(fmt.Sprintf("intercept.upstream_ca[%d]", i), f)
	}
	for i, cr := range c.Secrets.Credentials {
		need(fmt.Sprintf("secrets.credentials[%d].file", i), cr.File)
	}
	return v.probs.OrNil()
}

var configType = reflect.TypeFor[Config]()

type validator struct {
	c     *Config
	probs *Problems
}

func (v *validator) add(path, format string, args ...any) {
	v.probs.List = append(v.probs.List, Problem{Path: path, Line: v.line(path), Msg: fmt.Sprintf(format, args...)})
}

// line is where path was set, or for a key the file leaves out where its
// section was; 0 for a path that names no key of the configuration (a
// misspelt path in a check), rather than its section's line.
func (v *validator) line(path string) int {
	if !yamlcheck.HasPath(configType, path) {
		return 0
	}
	for {
		if l, ok := v.c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

func (v *validator) listen() {
	if err := checkListen(v.c.Listen); err != nil {
		v.add("listen", "%q %v (want host:port or :port, e.g. \":3000\" or \"127.0.0.1:3000\")", v.c.Listen, err)
	}
	if m := v.c.Metrics.Listen; m != "" {
		if err := checkListen(m); err != nil {
			v.add("metrics.listen", "%q %v (want host:port or :port, e.g. \":9090\")", m, err)
		} else if m == v.c.Listen {
			v.add("metrics.listen", "%q is the proxy's own listen address; give metrics another port", m)
		}
	}
}

// checkListen accepts what net.Listen accepts for TCP: an empty host means
// every interface and port 0 a free port, neither of which a destination
// may have.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("is not host:port")
	}
	if port != "0" {
		if _, _, err := hostport.Parse("x:"+port, 0); err != nil {
			return fmt.Errorf("has a bad port %q (want 0-65535)", port)
		}
	}
	if host != "" {
		if _, _, err := hostport.Parse(hostport.Join(host, 1), 0); err != nil {
			return fmt.Errorf("has a bad host %q", host)
		}
	}
	return nil
}

// policyOf checks the policy p found at path (the top level's or a
// role's): its own checks (policy.Config.Validate), and that a rule
// narrowed to methods or paths is for a host whose CONNECT tunnels the
// proxy intercepts (in intercept.hosts or a credential's hosts), unless
// its port cannot be tunnelled at all: a blind tunnel is decided by host
// alone, so the rule would silently not apply to https.
func (v *validator) policyOf(path string, p policy.Config) {
	for _, pr := range p.Validate() {
		v.add(path+"."+pr.Path, "%s", pr.Msg)
	}
	for _, list := range []struct {
		name  string
		rules []policy.Rule
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		for i, r := range list.rules {
			g, err := hostport.ParseGlob(r.Host)
			if err == nil && r.Narrowed() && v.tunnelledBlind(g, p.ConnectPorts) {
				v.add(fmt.Sprintf("%s.%s[%d]", path, list.name, i), "a rule with methods or paths for %q needs its tunnels intercepted: add %q to intercept.hosts (a CONNECT tunnel the proxy does not intercept is decided by host alone, so the rule would not apply to https)", r.Host, r.Host)
			}
		}
	}
}

// tunnelledBlind says whether CONNECT tunnels to hosts of g may be
// opened without being intercepted.
func (v *validator) tunnelledBlind(g hostport.Glob, connectPorts []int) bool {
	if g.Port != 0 && !slices.Contains(connectPorts, g.Port) {
		return false
	}
	intercepted := append([]string(nil), v.c.Intercept.Hosts...)
	for _, cr := range v.c.Secrets.Credentials {
		intercepted = append(intercepted, cr.Hosts...)
	}
	for _, s := range intercepted {
		h, err := hostport.ParseGlob(s)
		if err != nil || h.Port != 0 && h.Port != g.Port {
			continue
		}
		if h.Any || h.Wildcard == g.Wildcard && h.Host == g.Host ||
			h.Wildcard && !g.Any && strings.HasSuffix(g.Host, "."+h.Host) {
			return false
		}
	}
	return true
}

func (v *validator) globs(path string, list []string) {
	for i, s := range list {
		if _, err := hostport.ParseGlob(s); err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "bad host glob %q: %v", s, errors.Unwrap(err))
		}
	}
}

func (v *validator) oneOf(path, got string, want ...string) {
	if msg := didyoumean.OneOf(got, want...); msg != "" {
		v.add(path, "%s", msg)
	}
}

func (v *validator) audit() {
	a := v.c.Audit
	if a.File == "" && !a.Stdout {
		v.add("audit", "neither audit.file nor audit.stdout is set; the proxy does not run unaudited (set audit.stdout: true or audit.file: PATH)")
	}
	if a.MaxSizeMB < 1 {
		v.add("audit.max_size_mb", "%d must be at least 1", a.MaxSizeMB)
	}
	if a.MaxBackups < 0 {
		v.add("audit.max_backups", "%d must not be negative", a.MaxBackups)
	}
}

func (v *validator) limits() {
	l := v.c.Limits
	if l.RatePerSecond < 0 || math.IsNaN(l.RatePerSecond) || math.IsInf(l.RatePerSecond, 0) {
		v.add("limits.rate_per_second", "%v must be a number >= 0 (0 turns rate limiting off)", l.RatePerSecond)
	}
	if l.RatePerSecond > 0 && l.RateBurst < 1 {
		v.add("limits.rate_burst", "%d must be at least 1 while rate_per_second is on", l.RateBurst)
	}
	v.positive("limits.max_tunnels", l.MaxTunnels)
	v.positive("limits.max_tunnels_per_identity", l.MaxTunnelsPerIdentity)
	v.positive("limits.max_requests_per_identity", l.MaxRequestsPerIdentity)
	v.positive("limits.max_header_bytes", l.MaxHeaderBytes)
	v.positiveDuration("limits.read_header_timeout", l.ReadHeaderTimeout)
	v.positiveDuration("limits.idle_timeout", l.IdleTimeout)
	if l.ShutdownGrace < 0 {
		v.add("limits.shutdown_grace", "%v must not be negative", l.ShutdownGrace)
	}
}

func (v *validator) positive(path string, n int) {
	if n < 1 {
		v.add(path, "%d must be at least 1", n)
	}
}

func (v *validator) positiveDuration(path string, d Duration) {
	if d <= 0 {
		v.add(path, "%v must be longer than 0s", d)
	}
}

func (v *validator) tls() {
	t := v.c.TLS
	if t == nil {
		return
	}
	for _, f := range []struct{ key, val string }{{"cert", t.Cert}, {"key", t.Key}, {"client_ca", t.ClientCA}} {
		if f.val == "" {
			v.add("tls."+f.key, "missing: a tls section needs cert, key and client_ca (or leave tls out for the development CA)")
		}
	}
	v.identityGlobs("tls.allowed_identities", t.AllowedIdentities)
}

func (v *validator) intercept() {
	in := v.c.Intercept
	v.globs("intercept.hosts", in.Hosts)
	if (in.CACert == "") != (in.CAKey == "") {
		v.add("intercept", "ca_cert and ca_key go together: give both, or neither for a CA created in the state directory")
	}
}
