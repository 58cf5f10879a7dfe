package enroll

import (
	"crypto/x509"
	"math/rand/v2"
	"time"
)

// DueAt is when leaf should be renewed: when a third of its lifetime remains,
// made earlier by jitter so a fleet enrolled together does not renew together.
func DueAt(leaf *x509.Certificate, jitter time.Duration) time.Time {
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-lifetime / 3).Add(-jitter)
}

// RandomJitter picks a jitter up to a twentieth of leaf's lifetime.
func RandomJitter(leaf *x509.Certificate) time.Duration {
	max := int64(leaf.NotAfter.Sub(leaf.NotBefore) / 20)
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(max))
}
