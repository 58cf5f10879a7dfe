package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/slapenir/slapenir/internal/didyoumean"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// Config is the policy section of the proxy's configuration (and of each
// role's): which destinations a request may reach. The config package
// embeds it and reports its Problems with their lines; New compiles it.
type Config struct {
	Default       string   `yaml:"default"`        // "allow" (default) | "deny"
	Mode          string   `yaml:"mode"`           // "enforce" (default) | "report"
	Allow         []Rule   `yaml:"allow"`          // host globs with optional ":port" ("*.github.com", "api.openai.com:443", "example.com:*"), each alone or with methods and paths
	Deny          []Rule   `yaml:"deny"`           // the same, checked before Allow
	PrivateAllow  []string `yaml:"private_allow"`  // host names/globs or IPs, each with an optional ":port", or CIDRs, allowed despite resolving to private addresses
	ConnectPorts  []int    `yaml:"connect_ports"`  // ports CONNECT may reach, default [443]
	TelemetryDeny *bool    `yaml:"telemetry_deny"` // the built-in telemetry deny list (TelemetryHosts); default true
}

// Default is the built-in policy: everything allowed but the telemetry
// hosts, CONNECT to 443, and private addresses only for the host's Ollama
// (host.docker.internal on Ollama's port: the name alone would open every
// service on the host's gateway to the agents). Each call returns a fresh
// value.
func Default() Config {
	on := true
	return Config{
		Default:       "allow",
		Mode:          "enforce",
		PrivateAllow:  []string{"host.docker.internal:11434"},
		ConnectPorts:  []int{443},
		TelemetryDeny: &on,
	}
}

// WithDefaults is c with the built-in default for each key left unset.
func (c Config) WithDefaults() Config {
	def := Default()
	if c.Default == "" {
		c.Default = def.Default
	}
	if c.Mode == "" {
		c.Mode = def.Mode
	}
	if c.PrivateAllow == nil {
		c.PrivateAllow = def.PrivateAllow
	}
	if c.ConnectPorts == nil {
		c.ConnectPorts = def.ConnectPorts
	}
	if c.TelemetryDeny == nil {
		c.TelemetryDeny = def.TelemetryDeny
	}
	return c
}

// ReportMode reports whether the policy only notes what it would refuse.
func (c Config) ReportMode() bool { return c.Mode == "report" }

// TelemetryOn reports whether the built-in telemetry deny list applies; an
// unset value means yes.
func (c Config) TelemetryOn() bool {
	return c.TelemetryDeny == nil || *c.TelemetryDeny
}

// Rule is one allow or deny entry: a host glob, written alone
// ("api.github.com") or as a mapping that also narrows it to some methods
// and path patterns:
//
//	{host: api.github.com, methods: [GET], paths: ["/repos/acme/**"]}
//
// In a path pattern "*" is one segment and "**" any number of them.
// Paths match case-sensitively unless CaseInsensitivePaths says the
// upstream ignores case (IIS, a case-insensitive file system): then a
// deny rule for "/admin/**" must also refuse "/ADMIN/x".
type Rule struct {
	Host                 string   `yaml:"host"`
	Methods              []string `yaml:"methods,omitempty"`
	Paths                []string `yaml:"paths,omitempty"`
	CaseInsensitivePaths bool     `yaml:"case_insensitive_paths,omitempty"`
}

// SetScalar takes the short form: a glob alone (the configuration's
// decoder calls it for a scalar).
func (r *Rule) SetScalar(s string) { r.Host = s }

// Narrowed reports whether r names methods or paths, which only a request
// the proxy can see (not a blind CONNECT tunnel) can be decided by.
func (r Rule) Narrowed() bool { return len(r.Methods)+len(r.Paths) > 0 }

// Hosts is a list of rules of host globs alone.
func Hosts(globs ...string) []Rule {
	out := make([]Rule, len(globs))
	for i, g := range globs {
		out[i] = Rule{Host: g}
	}
	return out
}

// TelemetryHosts are the analytics and error-reporting endpoints coding
// agents phone home to, denied unless telemetry_deny is false. The list is
// the original SLAPENIR's.
var TelemetryHosts = []string{
	"telemetry.anthropic.com",
	"sentry.io",
	"*.sentry.io",
	"analytics.google.com",
	"*.segment.com",
	"*.mixpanel.com",
	"*.amplitude.com",
	"api.cline.bot",
	"*.cline.bot",
}

// Problem is one thing wrong with a Config; Path is the key within the
// section ("default", "allow[2].methods[0]"). It is the configuration's one
// problem type.
type Problem = yamlcheck.Problem

// Validate checks every value and returns every problem. It is the one
// check: config reports its problems with their lines, New refuses a
// Config that has any.
func (c Config) Validate() []Problem {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(path, got string, want ...string) {
		if msg := didyoumean.OneOf(got, want...); msg != "" {
			add(path, "%s", msg)
		}
	}
	oneOf("default", c.Default, "allow", "deny")
	oneOf("mode", c.Mode, "enforce", "report")
	for _, list := range []struct {
		name  string
		rules []Rule
	}{{"allow", c.Allow}, {"deny", c.Deny}} {
		for i, r := range list.rules {
			at := fmt.Sprintf("%s[%d]", list.name, i)
			if _, err := hostport.ParseGlob(r.Host); err != nil {
				add(at, "bad host glob %q: %v", r.Host, errors.Unwrap(err))
				continue
			}
			for j, m := range r.Methods {
				if !isMethod(m) {
					add(fmt.Sprintf("%s.methods[%d]", at, j), "%q is not an HTTP method (upper case, such as GET or POST)", m)
				}
			}
			for j, pat := range r.Paths {
				if err := CheckPathPattern(pat); err != nil {
					add(fmt.Sprintf("%s.paths[%d]", at, j), "%v", err)
				}
			}
			if r.CaseInsensitivePaths && len(r.Paths) == 0 {
				add(at+".case_insensitive_paths", "has no effect: the rule names no paths (add paths, or remove it)")
			}
		}
	}
	for i, s := range c.PrivateAllow {
		if err := CheckPrivateAllow(s); err != nil {
			add(fmt.Sprintf("private_allow[%d]", i), "%v", err)
		}
	}
	for i, port := range c.ConnectPorts {
		if port < 1 || port > 65535 {
			add(fmt.Sprintf("connect_ports[%d]", i), "port %d out of range 1-65535", port)
		}
	}
	return probs
}

func isMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// CheckPathPattern checks one path pattern of a rule: it starts with "/";
// "*" and "**" stand for whole segments only.
func CheckPathPattern(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path pattern %q does not start with \"/\"", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if strings.Contains(seg, "*") && seg != "*" && seg != "**" {
			return fmt.Errorf("path pattern %q: \"*\" and \"**\" stand for whole segments (\"/repos/*/issues\", \"/repos/**\"), not part of one", p)
		}
	}
	return nil
}

// CheckPrivateAllow checks one private_allow entry: a CIDR
// ("172.17.0.0/16"), an IP ("192.168.1.5"), an IP with a port
// ("127.0.0.1:11434", "[::1]:11434"), or a host name or glob with an
// optional port ("host.docker.internal", "host.docker.internal:11434",
// "*.internal"). An entry with a port allows only that port: the host's
// Ollama, not every service on its loopback. New reads entries the same
// way.
func CheckPrivateAllow(s string) error {
	switch {
	case strings.Contains(s, "/"):
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, bits, _ := strings.Cut(s, "/"); strings.Contains(bits, ":") {
				return fmt.Errorf("bad CIDR %q: a range takes no port (a single address may: 127.0.0.1:11434)", s)
			}
			return fmt.Errorf("bad CIDR %q (want an address range such as 172.17.0.0/16)", s)
		}
	case isIP(s):
	default:
		if ap, err := netip.ParseAddrPort(s); err == nil {
			if ap.Port() == 0 {
				return fmt.Errorf("%q: port 0 is not a port (want 1-65535)", s)
			}
			return nil
		}
		if _, err := hostport.ParseGlob(s); err != nil {
			return fmt.Errorf("bad host, IP or CIDR %q: %v", s, errors.Unwrap(err))
		}
	}
	return nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
