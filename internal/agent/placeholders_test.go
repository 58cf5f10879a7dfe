package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// The real values the proxy holds; none may show in the agent's report.
var realValues = map[string]string{
	"GITHUB_TOKEN":    "ghp_AgentReportR3alValue0123456789abcd",
	"OPENAI_API_KEY":  "sk-proj-AgentReportR3alValue0123456789",
	"SLACK_BOT_TOKEN": "xoxb-AgentReportR3alValue0123456789",
}

// placeholderProxy runs the real proxy over mTLS with three credentials
// read from its environment and one from a file without an agent
// variable, and a role, ci (agent-ci-*), that may use only github. It
// returns the proxy's URL, the placeholders by agent variable, and a
// certificate directory for identity, laid out as in the agent.
func placeholderProxy(t *testing.T, identity string) (string, map[string]string, string) {
	t.Helper()
	npm := filepath.Join(t.TempDir(), "npm_token")
	if err := os.WriteFile(npm, []byte("npm_AgentReportR3alValue0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("proxy.yaml", []byte(`secrets:
  credentials:
    - {name: github, env: GITHUB_TOKEN, hosts: [api.github.com]}
    - {name: openai, env: OPENAI_API_KEY, hosts: [api.openai.com]}
    - {name: slack, env: SLACK_BOT_TOKEN, hosts: [slack.com]}
    - {name: npm, file: `+npm+`, hosts: [registry.npmjs.org]}
roles:
  - {name: ci, identities: ["agent-ci-*"], credentials: [github]}
`))
	if err != nil {
		t.Fatal(err)
	}
	creds, v := proxytest.Credentials(t, cfg.Secrets, realValues)
	tlsOpts, ca := proxytest.DevMTLS(t, "agent-*")
	p := proxytest.Start(t, proxy.Options{Config: cfg, TLS: tlsOpts, Credentials: creds}, nil)
	certs := filepath.Join(t.TempDir(), "certs")
	if _, err := ca.IssueTo(certfile.Dir(certs), devca.Request{CommonName: identity, Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	placeholders := map[string]string{}
	for _, ph := range v.Placeholders() {
		placeholders[ph.Env] = ph.Placeholder
	}
	return p.URL, placeholders, certs
}

// report runs the agent with env until its first heartbeat and returns
// what it logged.
func report(t *testing.T, env map[string]string) string {
	t.Helper()
	out := &syncbuf.Buffer{}
	stop := make(chan os.Signal, 1)
	stop <- syscall.SIGTERM
	if code := Run(Config{Out: out, Getenv: func(k string) string { return env[k] }, Stop: stop}); code != 0 {
		t.Fatalf("exit %d; output:\n%s", code, out)
	}
	return out.String()
}

// TestReportNamesThePlaceholdersTheProxyAnnounces: against the real proxy,
// the agent reports the variables the proxy announces to it at
// /placeholders (not the seed's fixed names): set to the placeholder (✓,
// masked), unset (✗ Not set), or holding something else (✗, the value
// not shown); a credential without a variable is named; a role sees only
// the credentials it may use.
func TestReportNamesThePlaceholdersTheProxyAnnounces(t *testing.T) {
	url, ph, certs := placeholderProxy(t, "agent-7")
	got := report(t, map[string]string{
		"SLAPENIR_PROXY_URL": url,
		"SLAPENIR_CERTS_DIR": certs,
		"GITHUB_TOKEN":       ph["GITHUB_TOKEN"],
		// OPENAI_API_KEY unset; a real key pasted over the placeholder:
		"SLACK_BOT_TOKEN": realValues["SLACK_BOT_TOKEN"],
	})
	for _, want := range []string{
		"[INFO] Placeholders the proxy announces to this agent (" + url + "/placeholders): 4",
		"[INFO] Environment Variables Status:",
		"[INFO]   ✓ GITHUB_TOKEN: " + Mask(ph["GITHUB_TOKEN"]) + "\n",
		"[WARNING]   ✗ OPENAI_API_KEY: Not set (the proxy announces the placeholder " + Mask(ph["OPENAI_API_KEY"]) + " for credential openai)",
		"[WARNING]   ✗ SLACK_BOT_TOKEN: holds something other than the placeholder of credential slack (not shown)",
		"[INFO]   - npm: no variable",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; output:\n%s", want, got)
		}
	}
	for _, bad := range []string{"IBM_API_KEY", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "Cannot ask the proxy", "xoxb-", "R3al"} {
		if strings.Contains(got, bad) {
			t.Errorf("output has %q; output:\n%s", bad, got)
		}
	}
	if n := strings.Count(got, "DUMMY_"); n != 4 {
		t.Errorf("%d placeholders shown, want 4, each masked; output:\n%s", n, got)
	}

	// Under up the agent has only --health-url: the proxy is found from it.
	url, ph, certs = placeholderProxy(t, "agent-ci-1")
	out := &syncbuf.Buffer{}
	stop := make(chan os.Signal, 1)
	stop <- syscall.SIGTERM
	env := map[string]string{"SLAPENIR_CERTS_DIR": certs, "GITHUB_TOKEN": ph["GITHUB_TOKEN"]}
	Run(Config{Out: out, Getenv: func(k string) string { return env[k] }, Stop: stop, HealthURL: url + "/health"})
	got = out.String()
	if !strings.Contains(got, "announces to this agent ("+url+"/placeholders): 1") || !strings.Contains(got, "✓ GITHUB_TOKEN: DUMMY_GI...") ||
		strings.Contains(got, "OPENAI") || strings.Contains(got, "SLACK") || strings.Contains(got, "npm") {
		t.Errorf("role ci (github only):\n%s", got)
	}
}

// TestReportFallsBackWithoutACertificate: when the proxy cannot be asked
// (here: no certificate for mTLS yet), the report says why and checks the
// seed's names.
func TestReportFallsBackWithoutACertificate(t *testing.T) {
	url, _, _ := placeholderProxy(t, "agent-7")
	got := report(t, map[string]string{"SLAPENIR_PROXY_URL": url, "SLAPENIR_CERTS_DIR": t.TempDir(), "OPENAI_API_KEY": "sk-proj-DUMMY-placeholder"})
	for _, want := range []string{"[WARNING] Cannot ask the proxy which placeholders this agent holds (relay: the proxy", "needs the agent's certificate",
		"[INFO]   ✓ OPENAI_API_KEY: sk-proj-...", "[WARNING]   ✗ IBM_API_KEY: Not set"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; output:\n%s", want, got)
		}
	}
}
