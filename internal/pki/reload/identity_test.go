package reload_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

func TestIdentity(t *testing.T) {
	u, _ := url.Parse("spiffe://slapenir/agent/a1")
	c := &x509.Certificate{
		Subject:        pkix.Name{CommonName: "a1"},
		DNSNames:       []string{"a1", "a1.slape-net"},
		URIs:           []*url.URL{u},
		EmailAddresses: []string{"ops@example.org"},
	}
	want := []string{"a1", "a1.slape-net", "spiffe://slapenir/agent/a1", "ops@example.org"}
	if got := reload.Identity(c); !slices.Equal(got, want) {
		t.Errorf("Identity = %q, want %q", got, want)
	}
}

func TestAllowed(t *testing.T) {
	cases := []struct {
		ids, globs []string
		want       bool
	}{
		{[]string{"agent-1"}, nil, true},
		{[]string{"agent-1"}, []string{"agent-*"}, true},
		{[]string{"Agent-1"}, []string{"agent-?"}, true},
		{[]string{"agent-12"}, []string{"agent-?"}, false},
		{[]string{"x", "a.b.slape-net"}, []string{"*.slape-net"}, true},
		{[]string{"slape-net"}, []string{"*.slape-net"}, false},
		{[]string{"spiffe://slapenir/agent/a1"}, []string{"spiffe://slapenir/*"}, true},
		{[]string{"intruder"}, []string{"agent-*", "relay"}, false},
		{[]string{"relay"}, []string{"agent-*", "relay"}, true},
		{nil, []string{"*"}, false},
		{[]string{"aaa"}, []string{"*a*a*a*"}, true},
		{[]string{"aab"}, []string{"*a*a*a*"}, false},
	}
	for _, tc := range cases {
		if got := reload.Allowed(tc.ids, tc.globs); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %t, want %t", tc.ids, tc.globs, got, tc.want)
		}
	}
}

// selfSignedDir writes a self-signed client certificate (its own root).
func selfSignedDir(t *testing.T) certfile.Dir {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "agent-7"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := certfile.Dir(t.TempDir())
	if err := dir.Write(certfile.Bundle{Chain: []*x509.Certificate{cert}, Key: key, Root: cert}); err != nil {
		t.Fatal(err)
	}
	return dir
}
