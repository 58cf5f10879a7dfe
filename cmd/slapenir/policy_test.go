package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/proxy"
)

func TestPolicyExplain(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(cfg, []byte(`policy:
  default: deny
  allow: ["api.github.com"]
tls:
  cert: /nonexistent/cert.pem
  key: /nonexistent/key.pem
  client_ca: /nonexistent/ca.pem
  allowed_identities: ["agent-*"]
secrets:
  credentials:
    - name: github
      env: GITHUB_TOKEN_NOT_SET_HERE
      hosts: ["api.github.com"]
      inject: [header, query]
roles:
  - name: ci
    identities: ["agent-ci-*"]
    policy:
      default: allow
    credentials: []
    dlp: {mode: enforce}
`), 0o600)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := policyMain(append([]string{"explain"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	// The value of the credential is not needed to explain it.
	code, out, errs := run("--config", cfg, "--identity", "agent-7", "--no-lookup", "GET", "https://api.github.com/repos")
	if code != 0 || !strings.Contains(out, "→ allow (allowlist") || !strings.Contains(out, "intercepted") ||
		!strings.Contains(out, "github (placeholder DUMMY_GITHUB): injected in query, header") || !strings.Contains(out, "nothing was sent") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", code, out, errs)
	}
	// The same host over plain http: allowed, but the value is sent only
	// inside TLS, as the proxy would record (placeholder_cleartext).
	code, out, errs = run("--config", cfg, "--identity", "agent-7", "--no-lookup", "GET", "http://api.github.com/repos")
	if code != 0 || !strings.Contains(out, "→ allow (allowlist") || !strings.Contains(out, "github (placeholder DUMMY_GITHUB): not injected; placeholder_cleartext: http://api.github.com:80 is plain HTTP") {
		t.Fatalf("explain over plain http: exit %d, stdout:\n%s\nstderr: %s", code, out, errs)
	}
	code, out, _ = run("--config", cfg, "--json", "--no-lookup", "--identity", "intruder", "GET", "https://api.github.com/")
	var x proxy.Explanation
	if err := json.Unmarshal([]byte(out), &x); err != nil || code != 0 || x.Decision != "deny" || x.Reason != "identity_not_allowed" {
		t.Fatalf("exit %d, %+v, %v", code, x, err)
	}
	code, out, _ = run("--config", cfg, "--json", "--no-lookup", "POST", "http://example.com/")
	if err := json.Unmarshal([]byte(out), &x); err != nil || x.Decision != "deny" || x.Reason != "default_deny" || len(x.Credentials[0].Injected) != 0 {
		t.Fatalf("exit %d, %+v, %v", code, x, err)
	}
	// A host the credential is not for: no "not injected" line for it,
	// one line that counts it (the JSON above still lists it, for_host
	// false).
	code, out, _ = run("--config", cfg, "--no-lookup", "--identity", "agent-7", "GET", "https://example.com/")
	if code != 0 || strings.Contains(out, "credential:  github") || strings.Contains(out, "not injected") ||
		!strings.Contains(out, "  credentials: 1 not for example.com:443 (github); the request is refused: nothing is sent") {
		t.Fatalf("explain for a host no credential is for: exit %d\n%s", code, out)
	}
	code, out, _ = run("--config", cfg, "--no-lookup", "--identity", "agent-ci-3", "GET", "https://example.com/")
	if code != 0 || strings.Contains(out, "credential:  github") ||
		!strings.Contains(out, "  credentials: 1 not for example.com:443 (github); a placeholder of theirs sent here is forwarded unchanged and audited (placeholder_foreign_host)") {
		t.Fatalf("explain for a host no credential is for, allowed: exit %d\n%s", code, out)
	}
	// A role's policy, grants and dlp.
	code, out, _ = run("--config", cfg, "--no-lookup", "--identity", "agent-ci-3", "GET", "https://api.github.com/repos")
	if code != 0 || !strings.Contains(out, "role:        ci") || !strings.Contains(out, "placeholder_not_granted: role ci may not use it") || !strings.Contains(out, "dlp:         enforce") {
		t.Fatalf("explain for a role: exit %d\n%s", code, out)
	}
	code, out, _ = run("--config", cfg, "--json", "--no-lookup", "--identity", "agent-ci-3", "POST", "http://example.com/")
	if err := json.Unmarshal([]byte(out), &x); err != nil || code != 0 || x.Role != "ci" || x.Decision != "allow" || x.DLP != "enforce" {
		t.Fatalf("exit %d, %+v, %v", code, x, err)
	}
	if code, _, errs := run("GET", "ftp://example.com/"); code != 2 || !strings.Contains(errs, "ftp") {
		t.Errorf("an ftp URL: exit %d, %q; want 2 naming the scheme", code, errs)
	}
	if code, _, _ := run("GET"); code != 2 {
		t.Errorf("one argument: exit %d, want 2", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("policy:\n  default: perhaps\n"), 0o600)
	if code, _, errs := run("--config", bad, "GET", "http://example.com/"); code != 1 || !strings.Contains(errs, "perhaps") {
		t.Errorf("a bad config: exit %d, %q; want 1 naming the problem", code, errs)
	}
}
