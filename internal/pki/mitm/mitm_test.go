package mitm

import (
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/devca"
)

func newAuthority(t *testing.T) *Authority {
	t.Helper()
	ca, err := devca.EnsureAt(t.TempDir(), "test interception CA")
	if err != nil {
		t.Fatal(err)
	}
	return New(ca)
}

func TestLeafVerifiesForHostAndIsCached(t *testing.T) {
	a := newAuthority(t)
	for _, host := range []string{"api.github.com", "127.0.0.1", "::1"} {
		c, err := a.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(a.ca.Root)
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Fatalf("%s: leaf does not verify: %v", host, err)
		}
		again, _ := a.Leaf(host)
		if again != c {
			t.Fatalf("%s: leaf minted twice", host)
		}
	}
	if c, _ := a.Leaf("API.GitHub.com."); c.Leaf.Subject.CommonName != "api.github.com" {
		t.Fatal("host names are not normalised before caching")
	}
}

func TestLeafRenewedWhenDue(t *testing.T) {
	a := newAuthority(t)
	first, _ := a.Leaf("example.com")
	a.now = func() time.Time { return time.Now().Add(LeafLifetime * 3 / 4) }
	second, _ := a.Leaf("example.com")
	if second == first {
		t.Fatal("a leaf with a quarter of its life left was not renewed")
	}
}

func TestConcurrentCallersShareOneMint(t *testing.T) {
	a := newAuthority(t)
	var wg sync.WaitGroup
	got := make([]any, 16)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); c, _ := a.Leaf("same.example"); got[i] = c }()
	}
	wg.Wait()
	for _, c := range got[1:] {
		if c != got[0] {
			t.Fatal("concurrent callers got different leaves")
		}
	}
}

func TestNoHost(t *testing.T) {
	if _, err := newAuthority(t).Leaf(""); err == nil {
		t.Fatal("minted a certificate for no name")
	}
}
