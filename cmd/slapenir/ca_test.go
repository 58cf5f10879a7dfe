package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// TestCARunCreatesTheCAAndMintsTokens runs what the containers' CA runs,
// with the real step-ca: on its first start `slapenir ca run` creates the
// CA and writes a one-time token for the agent, which `certs bootstrap`
// (reading STEP_TOKEN_FILE, as the agent container does) enrolls with; a
// second start keeps the same root and mints a fresh token.
func TestCARunCreatesTheCAAndMintsTokens(t *testing.T) {
	stepCA := stepca.Binary(t)
	dir := t.TempDir()
	bin := buildBinary(t)
	addr := freeLoopback(t)
	_, port, _ := net.SplitHostPort(addr)
	caURL := "https://localhost:" + port
	caDir, tokenFile := filepath.Join(dir, "ca"), filepath.Join(dir, "tokens", "agent", "token")
	run := func() (*exec.Cmd, *syncbuf.Buffer) {
		os.Remove(tokenFile)
		var out syncbuf.Buffer
		cmd := exec.Command(bin, "ca", "run", "--dir", caDir, "--step-ca", stepCA, "--url", caURL, "--address", addr,
			"--dns", "localhost,127.0.0.1", "--token", "agent-1="+tokenFile)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(tokenFile); err == nil {
				return cmd, &out
			}
			if time.Now().After(deadline) {
				t.Fatalf("no token after 90s:\n%s", out.String())
			}
		}
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	cmd, out := run()
	if fi, err := os.Stat(filepath.Join(caDir, "password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("provisioner password: %v %v, want mode 0600 in the CA's directory", fi, err)
	}
	certs := filepath.Join(dir, "certs")
	boot := exec.Command(bin, "certs", "bootstrap", "--dir", certs)
	boot.Env = append(os.Environ(), "STEP_TOKEN=", "STEP_TOKEN_FILE="+tokenFile, "STEP_CA_URL="+caURL, "STEP_FINGERPRINT=")
	if b, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("certs bootstrap with the CA's token: %v\n%s\n--- ca ---\n%s", err, b, out.String())
	}
	leaf, err := certfile.ReadCerts(filepath.Join(certs, "cert.pem"))
	if err != nil || leaf[0].Subject.CommonName != "agent-1" {
		t.Fatalf("enrolled certificate: %v %v", leaf, err)
	}
	root1, _ := os.ReadFile(filepath.Join(caDir, "root_ca.crt"))
	first, _ := os.ReadFile(tokenFile)
	stop(cmd)

	cmd, out = run()
	defer stop(cmd)
	root2, _ := os.ReadFile(filepath.Join(caDir, "root_ca.crt"))
	second, _ := os.ReadFile(tokenFile)
	if !bytes.Equal(root1, root2) || strings.Contains(out.String(), "creating one") {
		t.Fatalf("a restart made a new CA:\n%s", out.String())
	}
	if bytes.Equal(first, second) {
		t.Fatal("a restart wrote the same (already spent) token again")
	}
}
