package pki_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/testutil/poll"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildSlapenir compiles the real binary once per test run.
func buildSlapenir(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "slapenir-pki-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "slapenir")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/slapenir/slapenir/cmd/slapenir").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/slapenir: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func run(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return stdout.String(), stderr.String(), code
}

// The operator's path end to end with the real binary and the real step-ca:
// mint a token from the CA's /provisioners, enroll through the seed's
// bootstrap-certs name, inspect, then run the renewal daemon, force a renewal
// with SIGHUP and see --exec run, and stop it with SIGTERM.
func TestCertsCommandsEndToEnd(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	bin := buildSlapenir(t)
	alias := filepath.Join(t.TempDir(), "bootstrap-certs")
	if err := os.Symlink(bin, alias); err != nil {
		t.Fatal(err)
	}
	env := []string{"STEP_CA_URL=" + ca.URL, "STEP_FINGERPRINT=" + ca.RootFingerprint, "STEP_PROVISIONER=agent-provisioner"}

	tok, stderr, code := run(t, bin, env, "certs", "token", "agent-cli", "--password-file", ca.PasswordFile, "--san", "agent-cli", "--san", "agent-cli.slape-net")
	if code != 0 {
		t.Fatalf("certs token exited %d: %s", code, stderr)
	}
	dir := filepath.Join(t.TempDir(), "certs")

	_, stderr, code = run(t, alias, env, "--dir", dir)
	if code != 2 || !strings.Contains(stderr, "STEP_TOKEN is not set") {
		t.Fatalf("bootstrap-certs without STEP_TOKEN: exit %d, %q; want 2 and a clear message", code, stderr)
	}
	tokEnv := append(env, "STEP_TOKEN="+strings.TrimSpace(tok))
	if _, stderr, code = run(t, alias, tokEnv, "--dir", dir); code != 0 {
		t.Fatalf("bootstrap-certs exited %d: %s\n%s", code, stderr, ca.Log())
	}
	if _, stderr, code = run(t, alias, tokEnv, "--dir", dir); code != 0 || !strings.Contains(stderr, "keeping it") {
		t.Fatalf("second bootstrap-certs: exit %d, %q; want the certificate kept", code, stderr)
	}
	if _, stderr, code = run(t, alias, tokEnv, "--dir", t.TempDir()); code == 0 || !strings.Contains(stderr, "already used") {
		t.Fatalf("reusing the token elsewhere: exit %d, %q; want a refusal naming reuse", code, stderr)
	}

	// The operator's other source of the provisioner key: the CA's ca.json
	// (no network; the root, hence the sha claim, comes from it too).
	tok2, stderr, code := run(t, bin, []string{"STEP_FINGERPRINT="}, "certs", "token", "--ca-config", ca.ConfigPath, "--password-file", ca.PasswordFile, "--ca-url", ca.URL, "agent-cfg")
	if code != 0 {
		t.Fatalf("certs token --ca-config exited %d: %s", code, stderr)
	}
	noFP := []string{"STEP_CA_URL=" + ca.URL, "STEP_FINGERPRINT=", "STEP_TOKEN=" + strings.TrimSpace(tok2)}
	if _, stderr, code = run(t, bin, noFP, "certs", "bootstrap", "--dir", t.TempDir()); code != 0 {
		t.Fatalf("bootstrap pinned only by the token's sha claim: exit %d: %s", code, stderr)
	}

	out, stderr, code := run(t, bin, nil, "certs", "inspect", filepath.Join(dir, "cert.pem"))
	if code != 0 {
		t.Fatalf("certs inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"subject:     CN=agent-cli", "agent-cli.slape-net", "SLAPENIR Test Intermediate CA", "time left:", "ECDSA P-256"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	before, err := certfile.ReadCerts(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "exec-ran")
	daemon := exec.Command(bin, "certs", "renew", "--daemon", "--dir", dir, "--exec", "echo ok >> "+marker)
	daemon.Env = append(os.Environ(), env...)
	var logs syncbuf.Buffer
	daemon.Stderr = &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	poll.Until(t, func() bool { return strings.Contains(logs.String(), "next renewal in") })
	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { _, err := os.Stat(marker); return err == nil })
	after, err := certfile.ReadCerts(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if after[0].SerialNumber.Cmp(before[0].SerialNumber) == 0 {
		t.Error("SIGHUP did not renew cert.pem")
	}
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Wait(); err != nil {
		t.Errorf("daemon stopped by SIGTERM: %v, want exit 0\n%s", err, logs.String())
	}
}

func TestDevIssueWritesBootstrapLayout(t *testing.T) {
	bin := buildSlapenir(t)
	state, out := t.TempDir(), filepath.Join(t.TempDir(), "agent-9")
	stdout, stderr, code := run(t, bin, nil, "certs", "dev-issue", "agent-9", "--out", out, "--state-dir", state)
	if code != 0 {
		t.Fatalf("dev-issue: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `issued "agent-9"`) {
		t.Errorf("dev-issue output: %q", stdout)
	}
	if st, err := os.Stat(filepath.Join(out, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v", err)
	}
	root, _ := os.ReadFile(filepath.Join(out, "root_ca.pem"))
	caRoot, _ := os.ReadFile(filepath.Join(state, "dev-ca", "root_ca.pem"))
	if len(root) == 0 || !bytes.Equal(root, caRoot) {
		t.Error("root_ca.pem is not the state directory's development CA root")
	}
}

// `certs renew` on an expired certificate exits non-zero and says to enroll
// again; step-ca would refuse it anyway.
func TestCertsRenewExpiredExitsNonZero(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	bin := buildSlapenir(t)
	dir := t.TempDir()
	env := []string{"STEP_CA_URL=" + ca.URL, "STEP_FINGERPRINT=", "STEP_TOKEN=" + ca.Token("agent-short", "", time.Time{})}
	if _, stderr, code := run(t, bin, env, "certs", "bootstrap", "--dir", dir, "--not-after", "2s"); code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, stderr)
	}
	certs, err := certfile.ReadCerts(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return time.Now().After(certs[0].NotAfter.Add(100 * time.Millisecond)) })
	for _, args := range [][]string{{"certs", "renew", "--dir", dir}, {"certs", "renew", "--daemon", "--dir", dir}} {
		_, stderr, code := run(t, bin, env, args...)
		if code == 0 || !strings.Contains(stderr, "expired") || !strings.Contains(stderr, "bootstrap --force") {
			t.Errorf("%v: exit %d, %q; want non-zero and advice to enroll again", args, code, stderr)
		}
	}
}
