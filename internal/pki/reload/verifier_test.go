package reload_test

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

func reason(err error) string {
	var r *reload.Refused
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// A cached success must not outlive a CA rotation or the certificate's
// validity, and must still apply the globs.
func TestVerifierCacheNeverHidesRotationOrExpiry(t *testing.T) {
	ca, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "client_ca.pem")
	if err := certfile.WriteAtomic(caFile, certfile.EncodeCerts(ca.Root), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := caPool(t, caFile)
	v := reload.NewVerifier(pool, []string{"agent-*"})

	good, _ := ca.Issue(devca.Request{CommonName: "agent-1", Lifetime: time.Hour})
	st := &tls.ConnectionState{PeerCertificates: good.Chain}
	now := time.Now()
	for range 2 { // miss, then hit
		peer, err := v.Verify(st, now)
		if err != nil || peer.Identities[0] != "agent-1" {
			t.Fatalf("Verify = %v, %v", peer.Identities, err)
		}
	}
	if _, err := v.Verify(st, good.Chain[0].NotAfter.Add(time.Second)); reason(err) != reload.ReasonExpired {
		t.Errorf("cached certificate after its NotAfter: %v, want %s", err, reload.ReasonExpired)
	}
	intruder, _ := ca.Issue(devca.Request{CommonName: "intruder"})
	if _, err := v.Verify(&tls.ConnectionState{PeerCertificates: intruder.Chain}, now); reason(err) != reload.ReasonNotAllowed {
		t.Errorf("intruder: %v", err)
	}
	if _, err := v.Verify(nil, now); reason(err) != reload.ReasonNoCertificate {
		t.Errorf("no certificate: %v", err)
	}

	// Rotate the pool to the other CA only: the cached success is void.
	if err := certfile.WriteAtomic(caFile, certfile.EncodeCerts(other.Root), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(st, now); reason(err) != reload.ReasonUnknownAuthority {
		t.Errorf("after the CA left the pool: %v, want %s", err, reload.ReasonUnknownAuthority)
	}
}
