package certfile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

func selfSigned(t *testing.T, cn string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter, DNSNames: []string{cn, "alt." + cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func TestWriteAtomicReplacesWithModeAndNoLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := certfile.WriteAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "new" || st.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %o, want new and 0600", b, st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if err := certfile.WriteAtomic(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("writing into a missing directory: %v", err)
	}
}

func TestDirWriteAndReadBack(t *testing.T) {
	now := time.Now()
	c, key := selfSigned(t, "agent-1", now.Add(-time.Hour), now.Add(time.Hour))
	d := certfile.Dir(filepath.Join(t.TempDir(), "certs"))
	if err := d.Write(certfile.Bundle{Chain: []*x509.Certificate{c}, Key: key, Root: c}); err != nil {
		t.Fatal(err)
	}
	certs, err := certfile.ReadCerts(d.Cert())
	if err != nil || !certs[0].Equal(c) {
		t.Fatalf("cert.pem read back: %v", err)
	}
	k, err := certfile.ReadKey(d.Key())
	if err != nil || !certfile.KeyMatches(c, k) {
		t.Fatalf("key.pem read back: %v", err)
	}
	st, _ := os.Stat(string(d))
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %o, want 0700", st.Mode().Perm())
	}
	if err := d.Write(certfile.Bundle{Chain: []*x509.Certificate{c}}); err == nil {
		t.Error("an incomplete bundle was written")
	}
}

func TestParseCertsRejectsNonCertificates(t *testing.T) {
	for _, in := range []string{"", "hello", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := certfile.ParseCerts([]byte(in)); err == nil {
			t.Errorf("ParseCerts(%q) succeeded", in)
		}
	}
}

func TestDescribe(t *testing.T) {
	now := time.Now()
	c, _ := selfSigned(t, "agent-1", now.Add(-time.Hour), now.Add(90*time.Minute))
	out := certfile.Describe(c, now)
	for _, want := range []string{"subject:     CN=agent-1", "SANs:        agent-1, alt.agent-1", "issuer:      CN=agent-1", "key type:    ECDSA P-256", "fingerprint: " + certfile.Fingerprint(c)} {
		if !strings.Contains(out, want) {
			t.Errorf("Describe lacks %q:\n%s", want, out)
		}
	}
	// x509 stores times to the second, so the time left is 1h29m59s or 1h30m0s.
	if got := certfile.TimeLeft(c, now); !strings.HasPrefix(got, "1h29m") && !strings.HasPrefix(got, "1h30m") {
		t.Errorf("TimeLeft = %q, want about 1h30m", got)
	}
	if got := certfile.TimeLeft(c, now.Add(2*time.Hour)); !strings.HasPrefix(got, "EXPIRED") {
		t.Errorf("TimeLeft after expiry = %q", got)
	}
	if got := certfile.TimeLeft(c, now.Add(-2*time.Hour)); !strings.HasPrefix(got, "not valid yet") {
		t.Errorf("TimeLeft before start = %q", got)
	}
}
