package up

import (
	"os"
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
		{"dev CA, unconfined", false, false, []string{"ca-bundle", "relay", "ollama-verify", "agent"}},
		{"dev CA, namespace", false, true, []string{"enforce", "ca-bundle", "relay", "ollama-verify", "agent"}},
		{"step-ca, unconfined", true, false, []string{"certs-bootstrap", "ca-bundle", "relay", "ollama-verify", "certs-renew", "agent"}},
		{"step-ca, namespace", true, true, []string{"enforce", "certs-bootstrap", "ca-bundle", "relay", "ollama-verify", "certs-renew", "agent"}},
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
			// The bundle needs the agent's certificate (and, confined,
			// the way to the proxy), and the agent needs the bundle.
			wantBundleDeps := map[[2]bool][]string{{true, true}: {"enforce", "certs-bootstrap"}, {true, false}: {"certs-bootstrap"}, {false, true}: {"enforce"}, {false, false}: nil}[[2]bool{tc.enroll, tc.enforce}]
			if got := svc["ca-bundle"].DependsOn; !slices.Equal(got, wantBundleDeps) {
				t.Errorf("ca-bundle depends on %v, want %v", got, wantBundleDeps)
			}
			if !slices.Contains(svc["agent"].DependsOn, "ca-bundle") {
				t.Errorf("agent depends on %v: it must wait for the CA bundle its tools trust", svc["agent"].DependsOn)
			}
			for _, name := range []string{"relay", "agent", "ca-bundle"} {
				if svc[name].User != agentUser {
					t.Errorf("%s runs as %q, want the agent user %s", name, svc[name].User, agentUser)
				}
			}
			if got := strings.Join(svc["relay"].Command, " "); !strings.Contains(got, "--certs /state dir/agent/certs") {
				t.Errorf("relay command %q lost the path with a space", got)
			}
			for _, want := range []string{"HTTP_PROXY=http://127.0.0.1:3128", "http_proxy=http://127.0.0.1:3128", "https_proxy=http://127.0.0.1:3128",
				"NO_PROXY=proxy,localhost,127.0.0.1,::1", "no_proxy=proxy,localhost,127.0.0.1,::1",
				"SSL_CERT_FILE=/state dir/agent/certs/ca-bundle.pem", "REQUESTS_CA_BUNDLE=/state dir/agent/certs/ca-bundle.pem",
				"CURL_CA_BUNDLE=/state dir/agent/certs/ca-bundle.pem", "NODE_EXTRA_CA_CERTS=/state dir/agent/certs/ca-bundle.pem",
				"GIT_SSL_CAINFO=/state dir/agent/certs/ca-bundle.pem", "PIP_CERT=/state dir/agent/certs/ca-bundle.pem"} {
				if !slices.Contains(svc["agent"].Env, want) {
					t.Errorf("agent env %v lacks %s (both cases: curl and wget read only the lower-case ones)", svc["agent"].Env, want)
				}
			}
		})
	}
}

// With a command given to up (up -- CMD, up --shell), the heartbeat agent
// service is left out: the command runs as the agent instead.
func TestServicesFileWithoutAgent(t *testing.T) {
	p := plan{Certs: "/s/certs", Workspace: "/s/ws", ProxyAddr: "10.213.1.1:3000", ProxyURL: "https://proxy:3000",
		RelayAddr: "127.0.0.1:3128", HelperAddr: "127.0.0.1:8765", Model: "m", Heartbeat: "1s", NoAgent: true}
	f, err := initconf.Parse("up.yaml", []byte(servicesFile(p)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Services {
		if s.Name == "agent" {
			t.Fatal("the heartbeat agent service is there although a command runs as the agent")
		}
	}
}

// up's agent gets the variables the container's agent service sets
// (agent/agent-services.yaml): one list of what the agent's tools need.
func TestAgentVarsMatchTheContainer(t *testing.T) {
	b, err := os.ReadFile("../../agent/agent-services.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := initconf.Parse("agent-services.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	var containerKeys []string
	for _, s := range f.Services {
		if s.Name == "agent" {
			for _, kv := range s.Env {
				containerKeys = append(containerKeys, strings.SplitN(kv, "=", 2)[0])
			}
		}
	}
	var upKeys []string
	for _, kv := range agentVars(plan{Certs: "/c", ProxyURL: "https://proxy:3000", RelayAddr: "127.0.0.1:3128"}) {
		upKeys = append(upKeys, kv[0])
	}
	// SLAPENIR_PROXY_URL is in up's init environment; SLAPENIR_CERTS_DIR
	// is up's certificate directory, which the container fixes.
	for _, k := range containerKeys {
		if !slices.Contains(upKeys, k) && k != "SLAPENIR_PROXY_URL" {
			t.Errorf("the container's agent sets %s, up's does not", k)
		}
	}
	for _, k := range upKeys {
		if !slices.Contains(containerKeys, k) && k != "SLAPENIR_CERTS_DIR" {
			t.Errorf("up's agent sets %s, the container's does not", k)
		}
	}
}
