package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestRoles(t *testing.T) {
	good := `policy:
  default: allow
limits:
  rate_per_second: 50
secrets:
  credentials:
    - {name: github, env: GH, hosts: [api.github.com]}
    - {name: openai, env: OA, hosts: [api.openai.com]}
roles:
  - name: ci
    identities: ["agent-ci-*"]
    policy:
      default: deny
      allow: [api.github.com]
    limits: {rate_per_second: 5, max_tunnels_per_identity: 2, max_requests_per_identity: 7}
    credentials: [github]
    dlp: {mode: enforce, exempt: ["*.internal"]}
  - name: sealed
    identities: [agent-sealed]
    credentials: []
default_role: ci
dlp:
  mode: report
`
	c, err := Parse("roles.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	roles := c.EffectiveRoles()
	if len(roles) != 3 || roles[0].Name != "ci" || roles[1].Name != "sealed" || roles[2].Name != DefaultRoleName {
		t.Fatalf("roles %+v", roles)
	}
	ci, sealed, def := roles[0], roles[1], roles[2]
	if ci.Policy.Default != "deny" || !reflect.DeepEqual(ci.Policy.ConnectPorts, []int{443}) || ci.Policy.Mode != "enforce" || !ci.Policy.TelemetryOn() {
		t.Errorf("ci policy did not get the built-in defaults for what it left out: %+v", ci.Policy)
	}
	if ci.RatePerSecond != 5 || ci.RateBurst != 200 || ci.MaxTunnelsPerIdentity != 2 || ci.MaxRequestsPerIdentity != 7 {
		t.Errorf("ci limits %v/%v/%v/%v, want 5 (its own), 200 (default burst), 2 and 7 (its own tunnels and requests)", ci.RatePerSecond, ci.RateBurst, ci.MaxTunnelsPerIdentity, ci.MaxRequestsPerIdentity)
	}
	if sealed.MaxRequestsPerIdentity != 256 || def.MaxRequestsPerIdentity != 256 {
		t.Errorf("requests in flight: sealed %d, default %d; want the top-level default 256", sealed.MaxRequestsPerIdentity, def.MaxRequestsPerIdentity)
	}
	if !reflect.DeepEqual(ci.Credentials, []string{"github"}) || sealed.Credentials == nil || len(sealed.Credentials) != 0 || def.Credentials != nil {
		t.Errorf("credentials ci %v sealed %#v default %#v: want [github], [] (none) and nil (all)", ci.Credentials, sealed.Credentials, def.Credentials)
	}
	if ci.DLP.Mode != DLPEnforce || sealed.DLP.Mode != DLPOff || def.DLP.Mode != DLPReport || def.RatePerSecond != 50 || def.Identities != nil {
		t.Errorf("dlp ci %q sealed %q default %q, default rate %v", ci.DLP.Mode, sealed.DLP.Mode, def.DLP.Mode, def.RatePerSecond)
	}
	if c.DefaultRole != "ci" {
		t.Errorf("default_role %q", c.DefaultRole)
	}
	if d := Default(); d.DefaultRole != DefaultRoleName || d.DLP.Mode != DLPOff || len(d.EffectiveRoles()) != 1 {
		t.Errorf("a config without roles should have the one default role, dlp off")
	}

	for _, bad := range []struct{ yaml, want string }{
		{"roles:\n  - {name: Ci, identities: [a]}\n", `roles.yaml:2: roles[0].name: "Ci" is not a role name`},
		{"roles:\n  - {name: default, identities: [a]}\n", `"default" is the role the top-level policy makes`},
		{"roles:\n  - {name: a, identities: [x]}\n  - {name: a, identities: [y]}\n", `roles.yaml:3: roles[1].name: "a" is also the name of roles[0]`},
		{"roles:\n  - {name: a}\n", `roles[0].identities: missing`},
		{"roles:\n  - {name: a, identities: ['a b']}\n", `roles[0].identities[0]: "a b" is not a name glob`},
		{"roles:\n  - name: a\n    identities: [x]\n    policy:\n      default: alow\n", `roles.yaml:5: roles[0].policy.default: "alow" is not "allow" or "deny" (did you mean "allow"?)`},
		{"roles:\n  - name: a\n    identities: [x]\n    policy:\n      allow: [{host: a.example, methods: [GET]}]\n", `roles[0].policy.allow[0]: a rule with methods or paths for "a.example" needs its tunnels intercepted`},
		{"roles:\n  - name: a\n    identities: [x]\n    policy:\n      connect_ports: [0]\n", `roles[0].policy.connect_ports[0]: port 0 out of range`},
		{"roles:\n  - name: a\n    identities: [x]\n    limits: {rate_burst: 0, max_tunnels_per_identity: -1, rate_per_second: -2}\n", `roles[0].limits.rate_per_second: -2 must be a number >= 0`},
		{"roles:\n  - name: a\n    identities: [x]\n    limits: {max_tunnels_per_identity: 0}\n", `roles[0].limits.max_tunnels_per_identity: 0 must be at least 1`},
		{"roles:\n  - name: a\n    identities: [x]\n    limits: {max_requests_per_identity: 0}\n", `roles[0].limits.max_requests_per_identity: 0 must be at least 1`},
		{"limits: {max_requests_per_identity: -3}\n", `limits.max_requests_per_identity: -3 must be at least 1`},
		{"roles:\n  - name: a\n    identities: [x]\n    credentials: [gihub]\n", `roles[0].credentials[0]: "gihub" is not the name of one of secrets.credentials`},
		{"roles:\n  - name: a\n    identities: [x]\n    dlp: {mode: enforcing}\n", `roles[0].dlp.mode: "enforcing" is not "off" or "report" or "enforce"`},
		{"roles:\n  - name: a\n    identities: [x]\n    dlp: {exempt: ['a b']}\n", `roles[0].dlp.exempt[0]: bad host glob "a b"`},
		{"roles:\n  - {name: ci, identities: [x]}\ndefault_role: cj\n", `roles.yaml:3: default_role: "cj" is not a role (known: default, ci)`},
		{"dlp: {mode: on}\n", `dlp.mode: "on" is not "off" or "report" or "enforce"`},
		{"roles:\n  - {name: a, identities: [x], polcy: {}}\n", `unknown key "roles[0].polcy" (did you mean "policy"?)`},
	} {
		_, err := Parse("roles.yaml", []byte(bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q:\n got %v\nwant %q", bad.yaml, err, bad.want)
		}
	}
}
