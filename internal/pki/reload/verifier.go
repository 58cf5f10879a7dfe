package reload

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"time"
)

// maxCached bounds the verifier's memory; when full it starts over, which
// only costs a re-verification per client.
const maxCached = 4096

// Verifier is VerifyClient with a cache of successes, for calling on every
// request: a chain verification (an ECDSA signature check per link) costs
// about 150 µs, a cache hit a hash of the chain. An entry is used only with
// the same CA pool (a reloaded pool is a new one) and while the certificate
// is within its validity period, so a reload or an expiry is never hidden.
type Verifier struct {
	pool    *CAPool
	allowed []string

	mu    sync.Mutex
	cache map[[32]byte]verified
}

type verified struct {
	pool *x509.CertPool
	peer Peer
}

// NewVerifier verifies against pool's current content and the allowed globs
// (see Allowed; none means any certificate from the pool).
func NewVerifier(pool *CAPool, allowed []string) *Verifier {
	return &Verifier{pool: pool, allowed: append([]string(nil), allowed...), cache: map[[32]byte]verified{}}
}

// Verify is VerifyClient(state, pool, allowed, now), cached.
func (v *Verifier) Verify(state *tls.ConnectionState, now time.Time) (Peer, error) {
	return v.VerifyIn(v.Pool(), state, now)
}

// Pool is the CA pool as it is now: a new pointer each time the CA file is
// reloaded, so a caller can key what it learnt from a verification by it.
func (v *Verifier) Pool() *x509.CertPool { return v.pool.Pool() }

// VerifyIn is Verify against current, a pool Pool returned: the caller
// knows which pool its answer holds for, even when the file is reloaded
// meanwhile.
func (v *Verifier) VerifyIn(current *x509.CertPool, state *tls.ConnectionState, now time.Time) (Peer, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return Peer{}, &Refused{Reason: ReasonNoCertificate}
	}
	key := chainKey(state.PeerCertificates)
	v.mu.Lock()
	e, ok := v.cache[key]
	v.mu.Unlock()
	leaf := state.PeerCertificates[0]
	if ok && e.pool == current && !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter) {
		return e.peer, nil
	}
	peer, err := verifyAgainst(state, current, v.allowed, now)
	if err != nil {
		return peer, err
	}
	v.mu.Lock()
	if len(v.cache) >= maxCached {
		clear(v.cache)
	}
	v.cache[key] = verified{pool: current, peer: peer}
	v.mu.Unlock()
	return peer, nil
}

func chainKey(chain []*x509.Certificate) [32]byte {
	h := sha256.New()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}
