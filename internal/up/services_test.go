package up

import (
	"slices"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/initconf"
)

// The generated service file must be one init accepts, in each of up's four
// shapes, with the order that keeps the one-time token safe.
func TestServicesFileIsValidForInit(t *testing.T) {
	for _, tc := range []struct {
		name            string
		enroll, enforce bool
		want            []string
	}{
		{"dev CA, unconfined", false, false, []string{"relay", "ollama-verify", "agent"}},
		{"dev CA, namespace", false, true, []string{"enforce", "relay", "ollama-verify", "agent"}},
		{"step-ca, unconfined", true, false, []string{"certs-bootstrap", "relay", "ollama-verify", "certs-renew", "agent"}},
		{"step-ca, namespace", true, true, []string{"enforce", "certs-bootstrap", "relay", "ollama-verify", "certs-renew", "agent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan{Certs: "/state dir/agent/certs", Workspace: "/state dir/agent/workspace", AsUser: true,
				Enroll: tc.enroll, Enforce: tc.enforce, ProxyAddr: "10.213.1.1:3000", CAAddr: "10.213.1.1:9000",
				ProxyURL: "https://proxy:3000", RelayAddr: "127.0.0.1:3128", HelperAddr: "127.0.0.1:8765",
				Model: "qwen2.5-coder:7b", Heartbeat: "30s"}
			text := servicesFile(p)
			f, err := initconf.Parse("up.yaml", []byte(text))
			if err != nil {
				t.Fatalf("init refuses the generated file: %v\n%s", err, text)
			}
			svc := map[string]*initconf.Service{}
			var names []string
			for _, s := range f.Services {
				svc[s.Name] = s
				names = append(names, s.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("services %v, want %v", names, tc.want)
			}
			if tc.enroll && tc.enforce && !slices.Equal(svc["certs-bootstrap"].DependsOn, []string{"enforce"}) {
				t.Errorf("certs-bootstrap depends on %v; it must wait for enforce", svc["certs-bootstrap"].DependsOn)
			}
			if tc.enforce && (svc["enforce"].User != "root" || !svc["enforce"].Privileged) {
				t.Errorf("enforce runs as %q privileged=%v, want root with CAP_NET_ADMIN", svc["enforce"].User, svc["enforce"].Privileged)
			}
			if tc.enforce {
				// Only what exists is opened: the CA port only when a
				// step-ca is behind it.
				got := strings.Join(svc["enforce"].Command, " ")
				if want := map[bool]string{true: "--ca 10.213.1.1:9000", false: "--no-ca"}[tc.enroll]; !strings.Contains(got, want) {
					t.Errorf("enforce command %q, want %q", got, want)
				}
			}
			for _, name := range []string{"relay", "agent"} {
				if svc[name].User != agentUser {
					t.Errorf("%s runs as %q, want the agent user %s", name, svc[name].User, agentUser)
				}
			}
			if got := strings.Join(svc["relay"].Command, " "); !strings.Contains(got, "--certs /state dir/agent/certs") {
				t.Errorf("relay command %q lost the path with a space", got)
			}
			for _, want := range []string{"HTTP_PROXY=http://127.0.0.1:3128", "http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
				"NO_PROXY=proxy,localhost,127.0.0.1,::1", "no_proxy=proxy,localhost,127.0.0.1,::1"} {
				if !slices.Contains(svc["agent"].Env, want) {
					t.Errorf("agent env %v lacks %s (both cases: curl and wget read only the lower-case ones)", svc["agent"].Env, want)
				}
			}
		})
	}
}
