package devca_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

func TestEnsureCreatesOnceWithPrivateFiles(t *testing.T) {
	state := t.TempDir()
	ca, err := devca.Ensure(state)
	if err != nil {
		t.Fatal(err)
	}
	dir := devca.Dir(state)
	for path, mode := range map[string]os.FileMode{
		dir:                                   0o700,
		filepath.Join(dir, "root_ca_key.pem"): 0o600,
		ca.RootFile():                         0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode = %o, want %o", path, st.Mode().Perm(), mode)
		}
	}
	again, err := devca.Ensure(state)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Root.Equal(ca.Root) {
		t.Error("second Ensure created a new root; want the existing one loaded")
	}
	if !ca.Root.IsCA {
		t.Error("root is not a CA certificate")
	}
}

func TestEnsureRefusesMismatchedKey(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := devca.Ensure(a); err != nil {
		t.Fatal(err)
	}
	if _, err := devca.Ensure(b); err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(devca.Dir(b), "root_ca_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devca.Dir(a), "root_ca_key.pem"), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devca.Ensure(a); err == nil {
		t.Fatal("Ensure accepted a key that does not belong to the root")
	}
}

func TestIssueClientWritesBootstrapLayout(t *testing.T) {
	ca, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := certfile.Dir(filepath.Join(t.TempDir(), "agent-1"))
	leaf, err := ca.IssueTo(out, devca.Request{CommonName: "agent-1", SANs: []string{"spiffe://slapenir/agent/agent-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out.Key()); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	roots, err := certfile.ReadCerts(out.Root())
	if err != nil || !roots[0].Equal(ca.Root) {
		t.Fatalf("root_ca.pem is not the dev CA's root: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify for client auth: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verifies as a server certificate")
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != devca.DefaultClientLifetime {
		t.Errorf("lifetime = %s, want %s", got, devca.DefaultClientLifetime)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://slapenir/agent/agent-1" {
		t.Errorf("URI SANs = %v", leaf.URIs)
	}
}

func TestEnsureServerCertKeepsThenReissues(t *testing.T) {
	ca, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := certfile.Dir(t.TempDir())
	names := []string{"localhost", "127.0.0.1", "proxy"}
	now := time.Now()
	first, err := ca.EnsureServerCert(dir, names, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root)
	if _, err := first.Verify(x509.VerifyOptions{Roots: pool, DNSName: "proxy"}); err != nil {
		t.Errorf("server certificate does not verify for %q: %v", "proxy", err)
	}
	kept, err := ca.EnsureServerCert(dir, names, time.Hour, now.Add(10*time.Minute))
	if err != nil || !kept.Equal(first) {
		t.Fatalf("fresh certificate not kept (err %v)", err)
	}
	renamed, err := ca.EnsureServerCert(dir, []string{"localhost", "127.0.0.1"}, time.Hour, now.Add(10*time.Minute))
	if err != nil || renamed.Equal(first) {
		t.Fatalf("certificate for other names kept (err %v)", err)
	}
	due, err := ca.EnsureServerCert(dir, []string{"localhost", "127.0.0.1"}, time.Hour, now.Add(45*time.Minute))
	if err != nil || due.Equal(renamed) {
		t.Fatalf("certificate with less than a third of its life left kept (err %v)", err)
	}
}
