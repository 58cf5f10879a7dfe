package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCertsPlaceholdersExports: the agent's oneshot asks the real proxy for
// its placeholders with its certificate and exports each as
// AGENT_ENV=placeholder for init (and as export lines for a shell), naming
// what it set and never printing a value.
func TestCertsPlaceholdersExports(t *testing.T) {
	const value = "ghp_TheRealTokenValue0123456789abcdef"
	t.Setenv("SLAPENIR_TEST_GITHUB", value)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("another-real-value-42\n"), 0o600)
	p := startProxyBinaryWith(t, `secrets:
  credentials:
    - name: github
      env: SLAPENIR_TEST_GITHUB
      agent_env: GITHUB_TOKEN
      hosts: ["github.com"]
    - name: quoted
      env: SLAPENIR_TEST_GITHUB
      agent_env: ODD_ONE
      hosts: ["example.com"]
      placeholder: "Odd.Place-holder_1"
    - name: filecred
      file: `+tokenFile+`
      hosts: ["example.org"]
`)
	certs := filepath.Join(filepath.Dir(p.config), "agent-certs")
	export := filepath.Join(t.TempDir(), "export")
	shellFile := filepath.Join(t.TempDir(), "sub", "placeholders.sh")
	cmd := exec.Command(p.bin, "certs", "placeholders", "--dir", certs, "--proxy", "https://"+p.addr, "--shell-file", shellFile, "--timeout", "10s")
	cmd.Env = append(os.Environ(), "SLAPENIR_EXPORT="+export)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("certs placeholders: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if strings.Contains(string(out), value) {
		t.Fatalf("the real value was printed:\n%s", out)
	}
	if !strings.Contains(string(out), `credential "filecred" has no variable for the agent`) {
		t.Errorf("a credential without a variable is not reported:\n%s", out)
	}
	if !strings.Contains(string(out), "[placeholders] exported 2 placeholder(s): GITHUB_TOKEN (github), ODD_ONE (quoted)") {
		t.Errorf("the log does not name what was exported:\n%s", out)
	}
	b, _ := os.ReadFile(export)
	if got, want := string(b), "GITHUB_TOKEN=DUMMY_GITHUB\nODD_ONE=Odd.Place-holder_1\n"; got != want {
		t.Errorf("$SLAPENIR_EXPORT holds %q, want %q", got, want)
	}
	// The shell file, sourced by a real shell, sets exactly the placeholders.
	sh, err := exec.Command("sh", "-c", `. "$0" && printf '%s|%s' "$GITHUB_TOKEN" "$ODD_ONE"`, shellFile).CombinedOutput()
	if err != nil || string(sh) != "DUMMY_GITHUB|Odd.Place-holder_1" {
		t.Errorf("sourcing %s: %v %q", shellFile, err, sh)
	}
	// Without $SLAPENIR_EXPORT: export lines for eval.
	cmd = exec.Command(p.bin, "certs", "placeholders", "--dir", certs, "--proxy", "https://"+p.addr, "--timeout", "10s")
	cmd.Env = os.Environ()
	stdout, err := cmd.Output()
	if err != nil || !strings.Contains(string(stdout), "export GITHUB_TOKEN='DUMMY_GITHUB'\n") {
		t.Errorf("printed exports: %v %q", err, stdout)
	}
}

// TestCertsPlaceholdersNoProxy: a proxy that never answers is reported
// with what was tried, after the timeout.
func TestCertsPlaceholdersNoProxy(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "certs", "placeholders", "--dir", t.TempDir(), "--proxy", "https://"+freeLoopback(t), "--timeout", "1s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "enroll first: slapenir certs bootstrap") {
		t.Errorf("without certificates: %v\n%s", err, out)
	}
}
