package config

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/slapenir/slapenir/internal/didyoumean"
	"github.com/slapenir/slapenir/internal/policy"
)

// DefaultRoleName is the role the top-level policy, limits and dlp
// sections make: every identity no role claims has it, unless
// default_role names another.
const DefaultRoleName = "default"

// Role is one roles entry: the policy, limits, credentials and outbound
// scanning of the agents whose certificate names match Identities. Roles
// are tried in order; the first whose globs match the certificate's common
// name or one of its SANs decides.
type Role struct {
	Name       string   `yaml:"name"`
	Identities []string `yaml:"identities"` // globs over the certificate's CN and SANs ("agent-ci-*")
	// Policy is the role's egress policy. Unset keys take the built-in
	// defaults (as the top-level policy does), not the top-level values.
	Policy policy.Config `yaml:"policy"`
	Limits RoleLimits    `yaml:"limits"`
	// Credentials are the names of the secrets.credentials the role may
	// have injected; absent means all of them, [] none. A placeholder of
	// a credential not granted is forwarded unchanged and audited.
	Credentials *[]string `yaml:"credentials"`
	DLP         DLP       `yaml:"dlp"`
}

// RoleLimits are a role's own client limits; each unset one is the
// top-level limits' value.
type RoleLimits struct {
	RatePerSecond          *float64 `yaml:"rate_per_second"`
	RateBurst              *int     `yaml:"rate_burst"`
	MaxTunnelsPerIdentity  *int     `yaml:"max_tunnels_per_identity"`
	MaxRequestsPerIdentity *int     `yaml:"max_requests_per_identity"`
}

// DLP is outbound scanning of requests for secret-shaped data.
type DLP struct {
	// Mode is "off" (the default), "report" (noted in the audit record,
	// sent all the same) or "enforce" (refused with 403 dlp_<rule>).
	Mode string `yaml:"mode"`
	// Exempt are host globs a request to which is not scanned.
	Exempt []string `yaml:"exempt"`
}

// DLP modes.
const (
	DLPOff     = "off"
	DLPReport  = "report"
	DLPEnforce = "enforce"
)

// EffectiveRole is a role with every limit resolved: what the proxy
// compiles.
type EffectiveRole struct {
	Name                   string
	Identities             []string // nil for the default role: it matches whoever no other role does
	Policy                 policy.Config
	RatePerSecond          float64
	RateBurst              int
	MaxTunnelsPerIdentity  int
	MaxRequestsPerIdentity int
	Credentials            []string // nil = all
	DLP                    DLP
}

// EffectiveRoles are the configured roles in matching order, each with its
// limits resolved, followed by the default role made of the top-level
// policy, limits and dlp.
func (c *Config) EffectiveRoles() []EffectiveRole {
	out := make([]EffectiveRole, 0, len(c.Roles)+1)
	for _, r := range c.Roles {
		e := EffectiveRole{
			Name: r.Name, Identities: r.Identities, Policy: r.Policy.WithDefaults(), DLP: r.DLP,
			RatePerSecond: c.Limits.RatePerSecond, RateBurst: c.Limits.RateBurst,
			MaxTunnelsPerIdentity: c.Limits.MaxTunnelsPerIdentity, MaxRequestsPerIdentity: c.Limits.MaxRequestsPerIdentity,
		}
		if l := r.Limits.RatePerSecond; l != nil {
			e.RatePerSecond = *l
		}
		if l := r.Limits.RateBurst; l != nil {
			e.RateBurst = *l
		}
		if l := r.Limits.MaxTunnelsPerIdentity; l != nil {
			e.MaxTunnelsPerIdentity = *l
		}
		if l := r.Limits.MaxRequestsPerIdentity; l != nil {
			e.MaxRequestsPerIdentity = *l
		}
		if r.Credentials != nil {
			e.Credentials = append([]string{}, *r.Credentials...)
		}
		out = append(out, e)
	}
	return append(out, EffectiveRole{
		Name: DefaultRoleName, Policy: c.Policy, DLP: c.DLP,
		RatePerSecond: c.Limits.RatePerSecond, RateBurst: c.Limits.RateBurst,
		MaxTunnelsPerIdentity: c.Limits.MaxTunnelsPerIdentity, MaxRequestsPerIdentity: c.Limits.MaxRequestsPerIdentity,
	})
}

// fillRoleDefaults gives each role's policy and dlp the built-in defaults
// for the keys its file left unset, as Parse does for the top level by
// decoding over Default, so that check-config and Version see them.
func (c *Config) fillRoleDefaults() {
	for i := range c.Roles {
		r := &c.Roles[i]
		r.Policy = r.Policy.WithDefaults()
		if r.DLP.Mode == "" {
			r.DLP.Mode = DLPOff
		}
	}
	if c.DLP.Mode == "" {
		c.DLP.Mode = DLPOff
	}
	if c.DefaultRole == "" {
		c.DefaultRole = DefaultRoleName
	}
}

var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// roles checks roles, default_role and dlp.
func (v *validator) roles() {
	names := map[string]string{}
	creds := map[string]bool{}
	for _, cr := range v.c.Secrets.Credentials {
		creds[cr.Name] = true
	}
	for i, r := range v.c.Roles {
		at := fmt.Sprintf("roles[%d]", i)
		switch {
		case !roleName.MatchString(r.Name):
			v.add(at+".name", "%q is not a role name (lower-case letters, digits, \"-\" and \"_\", such as \"ci\")", r.Name)
		case r.Name == DefaultRoleName:
			v.add(at+".name", "%q is the role the top-level policy makes; give this role another name", r.Name)
		case names[r.Name] != "":
			v.add(at+".name", "%q is also the name of %s; each role needs its own", r.Name, names[r.Name])
		default:
			names[r.Name] = at
		}
		if len(r.Identities) == 0 {
			v.add(at+".identities", "missing: a role needs the identity globs it is for (such as [\"agent-ci-*\"])")
		}
		v.identityGlobs(at+".identities", r.Identities)
		v.policyOf(at+".policy", r.Policy)
		if l := r.Limits.RatePerSecond; l != nil && (*l < 0 || math.IsNaN(*l) || math.IsInf(*l, 0)) {
			v.add(at+".limits.rate_per_second", "%v must be a number >= 0 (0 turns rate limiting off)", *l)
		}
		if l := r.Limits.RateBurst; l != nil {
			v.positive(at+".limits.rate_burst", *l)
		}
		if l := r.Limits.MaxTunnelsPerIdentity; l != nil {
			v.positive(at+".limits.max_tunnels_per_identity", *l)
		}
		if l := r.Limits.MaxRequestsPerIdentity; l != nil {
			v.positive(at+".limits.max_requests_per_identity", *l)
		}
		if r.Credentials != nil {
			for j, name := range *r.Credentials {
				if !creds[name] {
					v.add(fmt.Sprintf("%s.credentials[%d]", at, j), "%q is not the name of one of secrets.credentials", name)
				}
			}
		}
		v.dlp(at+".dlp", r.DLP)
	}
	if d := v.c.DefaultRole; d != DefaultRoleName && names[d] == "" {
		known := []string{DefaultRoleName}
		for _, r := range v.c.Roles {
			known = append(known, r.Name)
		}
		msg := fmt.Sprintf("%q is not a role (known: %s)", d, strings.Join(known, ", "))
		if s := didyoumean.Suggest(d, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		v.add("default_role", "%s", msg)
	}
	v.dlp("dlp", v.c.DLP)
}

func (v *validator) dlp(path string, d DLP) {
	v.oneOf(path+".mode", d.Mode, DLPOff, DLPReport, DLPEnforce)
	v.globs(path+".exempt", d.Exempt)
}

// identityGlobs checks globs over certificate names.
func (v *validator) identityGlobs(path string, globs []string) {
	for i, g := range globs {
		if strings.TrimSpace(g) == "" || strings.ContainsAny(g, " \t\n") {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a name glob (e.g. \"agent-*\" or \"*.agents.internal\")", g)
		}
	}
}
