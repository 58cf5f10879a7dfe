package reload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Reasons a client is refused, for audit records and metrics.
const (
	ReasonNoCertificate    = "no_client_certificate"
	ReasonUnknownAuthority = "unknown_authority" // self-signed or another CA
	ReasonExpired          = "certificate_expired"
	ReasonNotYetValid      = "certificate_not_yet_valid"
	ReasonInvalid          = "certificate_invalid" // wrong usage, bad chain…
	ReasonNotAllowed       = "identity_not_allowed"
	// ReasonUntrusted is a certificate accepted when its connection
	// opened that the client CA, reloaded since, no longer vouches for:
	// rotating the CA is how a certificate is revoked.
	ReasonUntrusted = "certificate_untrusted"
)

// Refused says why a client certificate was not accepted.
type Refused struct {
	Reason     string   // one of the Reason constants
	Identities []string // what the certificate claimed, when there was one
	Err        error    // the verification error, if any
}

func (r *Refused) Error() string {
	switch {
	case r.Err != nil && len(r.Identities) > 0:
		return fmt.Sprintf("client certificate of %q refused (%s): %v", r.Identities[0], r.Reason, r.Err)
	case r.Err != nil:
		return fmt.Sprintf("client certificate refused (%s): %v", r.Reason, r.Err)
	case len(r.Identities) > 0:
		return fmt.Sprintf("client certificate of %q refused (%s)", r.Identities[0], r.Reason)
	default:
		return "client certificate refused (" + r.Reason + ")"
	}
}

func (r *Refused) Unwrap() error { return r.Err }

// Peer is an accepted client.
type Peer struct {
	Leaf       *x509.Certificate
	Identities []string // Identity(Leaf); Identities[0] names the client
}

// VerifyClient checks the client certificate of a TLS connection against the
// current pool, at now, for client authentication, and its identities against
// allowed (see Allowed). It returns a *Refused error saying why not.
//
// Calling it on every request costs a chain verification each time; Verifier
// caches successes.
func VerifyClient(state *tls.ConnectionState, pool *CAPool, allowed []string, now time.Time) (Peer, error) {
	return verifyAgainst(state, pool.Pool(), allowed, now)
}

func verifyAgainst(state *tls.ConnectionState, roots *x509.CertPool, allowed []string, now time.Time) (Peer, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return Peer{}, &Refused{Reason: ReasonNoCertificate}
	}
	leaf := state.PeerCertificates[0]
	ids := Identity(leaf)
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Peer{}, &Refused{Reason: reasonFor(err, leaf, now), Identities: ids, Err: err}
	}
	if !Allowed(ids, allowed) {
		return Peer{}, &Refused{Reason: ReasonNotAllowed, Identities: ids, Err: fmt.Errorf("none of %q matches tls.allowed_identities %q", ids, allowed)}
	}
	return Peer{Leaf: leaf, Identities: ids}, nil
}

func reasonFor(err error, leaf *x509.Certificate, now time.Time) string {
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return ReasonUnknownAuthority
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		if now.Before(leaf.NotBefore) {
			return ReasonNotYetValid
		}
		return ReasonExpired
	}
	return ReasonInvalid
}
