package devca

import (
	"crypto/x509"
	"slices"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// EnsureServerCert keeps a server certificate for names in dir: it issues one
// when none is there, when the one there was not issued by this CA or for
// other names, or when less than a third of its lifetime remains; otherwise it
// keeps it. The proxy calls it at start and then periodically; its reloader
// picks the new files up. The first name is the common name.
func (ca *CA) EnsureServerCert(dir certfile.Dir, names []string, lifetime time.Duration, now time.Time) (*x509.Certificate, error) {
	if cur, ok := ca.current(dir, names, now); ok {
		return cur, nil
	}
	return ca.IssueTo(dir, Request{CommonName: names[0], SANs: names[1:], Usage: Server, Lifetime: lifetime})
}

func (ca *CA) current(dir certfile.Dir, names []string, now time.Time) (*x509.Certificate, bool) {
	if len(names) == 0 {
		return nil, false
	}
	chain, err := certfile.ReadCerts(dir.Cert())
	if err != nil {
		return nil, false
	}
	key, err := certfile.ReadKey(dir.Key())
	if err != nil {
		return nil, false
	}
	leaf := chain[0]
	if !certfile.KeyMatches(leaf, key) || leaf.CheckSignatureFrom(ca.Root) != nil {
		return nil, false
	}
	want := slices.Clone(names)
	slices.Sort(want)
	have := certfile.Names(leaf)
	slices.Sort(have)
	if !slices.Equal(slices.Compact(want), have) {
		return nil, false
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf, now.Before(leaf.NotAfter.Add(-lifetime / 3))
}
