package enroll_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/token"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

// BenchmarkBootstrap measures one enrollment against a local step-ca: root
// fetch and pin, P-256 key and CSR, POST /sign, verification and the three
// atomic writes. Minting the token (done by the operator, not the agent) is
// outside the timer.
func BenchmarkBootstrap(b *testing.B) {
	ca := stepca.Start(b, stepca.Options{})
	key := ca.SigningKey(ca.Provisioner)
	base := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		subject := fmt.Sprintf("bench-%d", i)
		tok, err := token.Mint(token.Request{Key: key, Provisioner: ca.Provisioner, CAURL: ca.URL, Subject: subject, RootSHA: ca.RootFingerprint})
		if err != nil {
			b.Fatal(err)
		}
		dir := certfile.Dir(filepath.Join(base, subject))
		b.StartTimer()
		if _, err := (enroll.Bootstrap{CAURL: ca.URL, Token: tok, Dir: dir, Timeout: 10 * time.Second}).Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenew measures one renewal over mTLS (POST /renew) and the atomic
// replacement of cert.pem.
func BenchmarkRenew(b *testing.B) {
	ca := stepca.Start(b, stepca.Options{})
	dir := certfile.Dir(b.TempDir())
	if _, err := (enroll.Bootstrap{CAURL: ca.URL, Token: ca.Token("bench-renew", "", time.Time{}), Dir: dir}).Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	r := &enroll.Renewer{CAURL: ca.URL, Dir: dir}
	b.ResetTimer()
	for range b.N {
		if _, err := r.RenewNow(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
