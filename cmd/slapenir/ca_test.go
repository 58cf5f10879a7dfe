package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if leaf := bootstrapFrom(t, bin, dir, tokenFile, caURL, out); leaf[0].Subject.CommonName != "agent-1" {
		t.Fatalf("enrolled certificate for %s", leaf[0].Subject.CommonName)
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

// TestCARunWithAGivenRootAndPassword is the Kubernetes chart's way: the
// root (RSA, PKCS #1, as Helm's genCA makes it) and the provisioner
// password come from Secrets; an init step elsewhere mints each agent's
// token with `certs token --out` from the password and the public root,
// and the agent enrolls with it. The root key is never written to the CA's
// directory.
func TestCARunWithAGivenRootAndPassword(t *testing.T) {
	stepCA := stepca.Binary(t)
	dir := t.TempDir()
	bin := buildBinary(t)
	addr := freeLoopback(t)
	_, port, _ := net.SplitHostPort(addr)
	caURL := "https://localhost:" + port

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "chart root"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * 365 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	rootFile, keyFile, passFile := filepath.Join(dir, "root", "tls.crt"), filepath.Join(dir, "root", "tls.key"), filepath.Join(dir, "provisioner", "password")
	os.MkdirAll(filepath.Dir(rootFile), 0o700)
	os.MkdirAll(filepath.Dir(passFile), 0o700)
	os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.WriteFile(passFile, []byte("a-password-from-a-secret-0123456789\n"), 0o600)

	caDir := filepath.Join(dir, "ca")
	var out syncbuf.Buffer
	cmd := exec.Command(bin, "ca", "run", "--dir", caDir, "--step-ca", stepCA, "--url", caURL, "--address", addr,
		"--dns", "localhost,127.0.0.1", "--root-cert", rootFile, "--root-key", keyFile, "--password-file", passFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()

	tokenFile := filepath.Join(dir, "token", "token")
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		mint := exec.Command(bin, "certs", "token", "agent-7", "--ca-url", caURL, "--password-file", passFile, "--root", rootFile, "--out", tokenFile)
		b, err := mint.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certs token never succeeded: %v\n%s\n--- ca ---\n%s", err, b, out.String())
		}
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want 0600", fi, err)
	}
	leaf := bootstrapFrom(t, bin, dir, tokenFile, caURL, &out)
	if leaf[0].Subject.CommonName != "agent-7" {
		t.Fatalf("enrolled certificate for %s", leaf[0].Subject.CommonName)
	}
	roots := x509.NewCertPool()
	root, _ := x509.ParseCertificate(der)
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range leaf[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the agent's certificate does not chain to the given root: %v", err)
	}
	filepath.Walk(caDir, func(p string, _ os.FileInfo, _ error) error {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("RSA PRIVATE KEY")) {
			t.Errorf("the root key was written to the CA's directory: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(caDir, "password")); err == nil {
		t.Error("a password was created in the CA's directory although --password-file gave one")
	}
}
