package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/enforce/enforcetest"
)

func enforceRun(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = enforceMain(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEnforceDryRunNeedsNoPrivilege(t *testing.T) {
	t.Setenv("STEP_CA_URL", "https://10.0.0.2:9443")
	code, out, errOut := enforceRun("--dry-run", "--proxy", "10.0.0.3:3000", "--dns", "10.0.0.53")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"table inet slapenir {",
		"ip daddr 10.0.0.3 tcp dport 3000 accept",
		"ip daddr 10.0.0.2 tcp dport 9443 accept", // from $STEP_CA_URL
		"ip daddr 10.0.0.53 udp dport 53 accept",
		`log prefix "slapenir-drop: "`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
}

func TestEnforceUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"--check", "--remove"}, 2, "exclude each other"},
		{[]string{"--dry-run", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--dry-run", "--proxy", "proxy.invalid:3000", "--ca", "10.0.0.2:9000"}, 1, `proxy name "proxy.invalid" does not resolve`},
		// Applying fails before touching anything, and fatally: the agent must not start unconfined.
		{[]string{"--proxy", "proxy.invalid:3000", "--ca", "10.0.0.2:9000"}, 100, `proxy name "proxy.invalid" does not resolve`},
	} {
		code, _, errOut := enforceRun(tc.args...)
		if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
			t.Errorf("enforce %v: exit %d, stderr %q; want exit %d saying %q", tc.args, code, errOut, tc.wantCode, tc.wantErr)
		}
	}
}

// TestEnforceBinaryInNamespace runs the real binary inside a namespace, as the
// agent's init does: install, check, run twice, remove, check again.
func TestEnforceBinaryInNamespace(t *testing.T) {
	tn := enforcetest.New(t)
	bin := buildBinary(t)
	dir := filepath.Dir(bin)
	host := tn.HostIP.String()
	proxy := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	ca := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	canary := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	// The agent runs --check as an ordinary user: let nobody reach the binary.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inNSAs := func(prefix []string, args ...string) (int, string) {
		argv := append(append([]string{"netns", "exec", tn.Name}, prefix...), append([]string{bin, "enforce"}, args...)...)
		cmd := exec.Command("ip", argv...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	inNS := func(args ...string) (int, string) { return inNSAs(nil, args...) }
	nobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	check := []string{"--check", "--proxy", proxy.String(), "--canary", canary.String(), "--timeout", "400ms"}

	if code, out := inNS(check...); code != 1 || !strings.Contains(out, "canary half") {
		t.Errorf("check before enforce: exit %d, %q; want 1 naming the canary half", code, out)
	}
	t.Setenv("SLAPENIR_PROXY_ADDR", proxy.String())
	t.Setenv("STEP_CA_URL", "https://"+ca.String())
	for i := 0; i < 2; i++ {
		if code, out := inNS(); code != 0 || !strings.Contains(out, "egress locked down") {
			t.Fatalf("enforce #%d: exit %d, %q", i+1, code, out)
		}
	}
	if code, out := inNS(check...); code != 0 || !strings.Contains(out, "check passed") {
		t.Errorf("check after enforce: exit %d, %q; want 0", code, out)
	}
	if _, err := exec.LookPath("setpriv"); err == nil {
		if code, out := inNSAs(nobody, check...); code != 0 {
			t.Errorf("check as an unprivileged user: exit %d, %q; want 0", code, out)
		}
		if code, out := inNSAs(nobody, "--dry-run"); code != 0 || !strings.Contains(out, "table inet slapenir") {
			t.Errorf("dry run as an unprivileged user: exit %d, %q", code, out)
		}
		if code, out := inNSAs(nobody, "--remove"); code != 1 || !strings.Contains(out, "CAP_NET_ADMIN") {
			t.Errorf("remove as an unprivileged user: exit %d, %q; want 1 saying CAP_NET_ADMIN is needed", code, out)
		}
	}
	if code, out := inNS("--check", "--timeout", "400ms"); code != 0 {
		t.Errorf("check with the default canary and $SLAPENIR_PROXY_ADDR: exit %d, %q; want 0", code, out)
	}
	if code, out := inNS("--remove"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: exit %d, %q", code, out)
	}
	if code, out := inNS(check...); code != 1 || !strings.Contains(out, "canary half") {
		t.Errorf("check after remove: exit %d, %q; want 1 naming the canary half", code, out)
	}
}
