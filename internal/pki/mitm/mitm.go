package mitm

import (
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

// LeafLifetime is how long a minted leaf is valid: short, since minting is
// cheap and a leaked leaf should be useless soon.
const LeafLifetime = 12 * time.Hour

// maxCached bounds the cache: an agent naming endless hosts must not grow
// the proxy's memory without limit.
const maxCached = 4096

// Authority mints and caches leaves. Safe for concurrent use.
type Authority struct {
	ca  *devca.CA
	now func() time.Time

	mu    sync.Mutex
	cache map[string]*entry
}

type entry struct {
	once sync.Once
	cert *tls.Certificate
	err  error
}

// New mints leaves from ca.
func New(ca *devca.CA) *Authority {
	return &Authority{ca: ca, now: time.Now, cache: map[string]*entry{}}
}

// CertPEM is the interception CA's certificate, for agents to trust
// (served at /ca.pem).
func (a *Authority) CertPEM() []byte { return certfile.EncodeCerts(a.ca.Root) }

// Leaf returns a certificate for host, minting one when none is cached or the
// cached one has less than a third of its life left. Concurrent callers for
// the same host share one minting.
func (a *Authority) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return nil, fmt.Errorf("mitm: no host name to mint a certificate for")
	}
	for {
		e := a.entry(host)
		e.once.Do(func() { e.cert, e.err = a.mint(host) })
		if e.err == nil && a.now().Before(e.cert.Leaf.NotAfter.Add(-LeafLifetime/3)) {
			return e.cert, nil
		}
		// Failed or due for renewal: drop it, so this or the next caller
		// mints afresh. A fresh leaf is never due, so this loops at most twice.
		a.mu.Lock()
		if a.cache[host] == e {
			delete(a.cache, host)
		}
		a.mu.Unlock()
		if e.err != nil {
			return nil, e.err
		}
	}
}

func (a *Authority) entry(host string) *entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.cache[host]
	if e == nil {
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
		e = &entry{}
		a.cache[host] = e
	}
	return e
}

func (a *Authority) mint(host string) (*tls.Certificate, error) {
	b, err := a.ca.Issue(devca.Request{CommonName: host, Usage: devca.Server, Lifetime: LeafLifetime, NotBefore: a.now().Add(-time.Minute)})
	if err != nil {
		return nil, fmt.Errorf("mitm: cannot mint a certificate for %q: %w", host, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{b.Chain[0].Raw, a.ca.Root.Raw},
		PrivateKey:  b.Key,
		Leaf:        b.Chain[0],
	}, nil
}
