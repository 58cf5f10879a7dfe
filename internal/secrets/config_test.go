package secrets

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"github.com", "*.github.com:443"}}
	cases := []struct {
		name  string
		creds []CredentialConfig
		want  []string // "path: fragment", in order
	}{
		{"valid", []CredentialConfig{ok, {Name: "openai", File: "/run/secrets/openai", Hosts: []string{"api.openai.com"}, FormatPreserving: true, AgentEnv: "OPENAI_API_KEY"}}, nil},
		{"no name", []CredentialConfig{{Env: "X", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[0].name: missing"}},
		{"bad name", []CredentialConfig{{Name: "9 lives", Env: "X", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[0].name: \"9 lives\" is not a name"}},
		{"same name", []CredentialConfig{ok, {Name: "GitHub", Env: "OTHER", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[1].name: \"GitHub\" is the same name as secrets.credentials[0]", "secrets.credentials[1].placeholder: \"DUMMY_GITHUB\" is also the placeholder of secrets.credentials[0]"}},
		{"no source", []CredentialConfig{{Name: "a", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[0]: has neither env nor file"}},
		{"two sources", []CredentialConfig{{Name: "a", Env: "A", File: "/f", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[0]: has both env and file"}},
		{"bad env", []CredentialConfig{{Name: "a", Env: "A-B", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[0].env: \"A-B\" is not an environment variable name"}},
		{"no hosts", []CredentialConfig{{Name: "a", Env: "A"}}, []string{"secrets.credentials[0].hosts: is empty"}},
		{"bad glob", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"ok.com", "api-*.x.com"}}}, []string{"secrets.credentials[0].hosts[1]: bad host glob \"api-*.x.com\""}},
		{"every host", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"*"}}}, []string{"secrets.credentials[0].hosts[0]: \"*\" would send the credential to every host"}},
		{"placeholder and shape", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"a.com"}, Placeholder: "DUMMY_XYZ", FormatPreserving: true}}, []string{"secrets.credentials[0].placeholder: is set together with format_preserving"}},
		{"short placeholder", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"a.com"}, Placeholder: "XY"}}, []string{"secrets.credentials[0].placeholder: \"XY\" is shorter than 6"}},
		{"placeholder chars", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"a.com"}, Placeholder: "DUMMY A"}}, []string{"secrets.credentials[0].placeholder: \"DUMMY A\" may only contain"}},
		{"placeholder collision", []CredentialConfig{ok, {Name: "b", Env: "B", Hosts: []string{"a.com"}, Placeholder: "DUMMY_GITHUB"}}, []string{"secrets.credentials[1].placeholder: \"DUMMY_GITHUB\" is also the placeholder of secrets.credentials[0]"}},
		{"dash and underscore collide", []CredentialConfig{{Name: "a-b", Env: "A", Hosts: []string{"a.com"}}, {Name: "a_b", Env: "B", Hosts: []string{"a.com"}}}, []string{"secrets.credentials[1].name: \"a_b\" is the same name", "secrets.credentials[1].placeholder: \"DUMMY_A_B\" is also"}},
		{"bad agent env", []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"a.com"}, AgentEnv: "1X"}}, []string{"secrets.credentials[0].agent_env: \"1X\" is not"}},
		{"agent env twice", []CredentialConfig{ok, {Name: "b", File: "/f", Hosts: []string{"a.com"}, AgentEnv: "GITHUB_TOKEN"}}, []string{"secrets.credentials[1].agent_env: \"GITHUB_TOKEN\" is also exported by secrets.credentials[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := Config{Credentials: c.creds}.Validate()
			if len(probs) != len(c.want) {
				t.Fatalf("got %d problems %v, want %d %v", len(probs), probs, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(probs[i].Error(), w) {
					t.Errorf("problem %d is %q, want it to start with %q", i, probs[i].Error(), w)
				}
			}
		})
	}
}

func TestZeroConfigIsValid(t *testing.T) {
	if probs := (Config{}).Validate(); probs != nil {
		t.Errorf("zero Config has problems: %v", probs)
	}
}
