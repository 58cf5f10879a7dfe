package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/stepca"
)

// ErrExpired means the certificate is past its NotAfter: step-ca will not
// renew it, only a new enrollment can replace it.
var ErrExpired = errors.New("certificate expired")

// Renewer keeps the certificate in Dir fresh.
type Renewer struct {
	CAURL string
	Dir   certfile.Dir
	// Timeout bounds the retries of one renewal while the CA is unreachable;
	// the certificate's own expiry bounds them too.
	Timeout time.Duration
	// AfterRenew runs after each renewal (--exec / --pid); its error is logged.
	AfterRenew func(ctx context.Context) error
	Logf       func(format string, args ...any)
	// Now is the clock deciding when renewal is due; tests move it forward
	// instead of waiting a third of a certificate's lifetime.
	Now func() time.Time
	// Jitter picks how much earlier than DueAt to renew; nil means RandomJitter.
	Jitter func(leaf *x509.Certificate) time.Duration
}

func (r *Renewer) defaults() {
	if r.CAURL == "" {
		r.CAURL = DefaultCAURL
	}
	if r.Dir == "" {
		r.Dir = DefaultDir
	}
	if r.Timeout <= 0 {
		r.Timeout = 2 * time.Minute
	}
	if r.Logf == nil {
		r.Logf = func(string, ...any) {}
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Jitter == nil {
		r.Jitter = RandomJitter
	}
}

// RenewNow renews the certificate in Dir once, retrying while the CA is down,
// replaces cert.pem atomically and runs AfterRenew. The key is kept: step-ca
// renews the same public key.
func (r *Renewer) RenewNow(ctx context.Context) (*x509.Certificate, error) {
	r.defaults()
	st, err := Load(r.Dir)
	if err != nil {
		return nil, err
	}
	leaf := st.Leaf()
	if now := r.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s (%q) expired at %s and cannot be renewed; enroll again with a new token: STEP_TOKEN=… slapenir certs bootstrap --force", ErrExpired, r.Dir.Cert(), leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	client := stepca.New(r.CAURL, st.Root)
	deadline := time.Now().Add(r.Timeout)
	if d := time.Until(leaf.NotAfter); d < r.Timeout {
		deadline = time.Now().Add(d)
	}
	var chain []*x509.Certificate
	err = retry(ctx, deadline, r.Logf, "renew at "+r.CAURL, func() error {
		var err error
		chain, err = client.Renew(ctx, st.KeyPair)
		return err
	})
	if err != nil {
		return nil, explainRenew(err, leaf.Subject.CommonName)
	}
	if err := verifyChain(chain, st.Root, r.Now()); err != nil {
		return nil, err
	}
	if !samePublicKey(chain[0], leaf) {
		return nil, fmt.Errorf("enroll: the CA renewed %q with a different public key; refusing to write a certificate that does not match %s", leaf.Subject.CommonName, r.Dir.Key())
	}
	if err := certfile.WriteAtomic(r.Dir.Cert(), certfile.EncodeCerts(chain...), 0o644); err != nil {
		return nil, err
	}
	r.Logf("renewed %q: %s now valid until %s", chain[0].Subject.CommonName, r.Dir.Cert(), chain[0].NotAfter.UTC().Format(time.RFC3339))
	if r.AfterRenew != nil {
		if err := r.AfterRenew(ctx); err != nil {
			r.Logf("after renewal: %v", err)
		}
	}
	return chain[0], nil
}

// Run renews whenever the certificate is due, or at once when force receives,
// until ctx ends (returns nil) or the certificate expires without a successful
// renewal (returns an error wrapping ErrExpired).
func (r *Renewer) Run(ctx context.Context, force <-chan struct{}) error {
	r.defaults()
	failures := 0
	for {
		st, err := Load(r.Dir)
		if err != nil {
			return err
		}
		leaf := st.Leaf()
		due := DueAt(leaf, r.Jitter(leaf))
		wait := max(due.Sub(r.Now()), 0)
		r.Logf("certificate %q valid until %s; next renewal in %s", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), wait.Round(time.Second))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-force:
			timer.Stop()
			r.Logf("renewal forced (SIGHUP)")
		case <-timer.C:
		}
		if _, err := r.RenewNow(ctx); err != nil {
			if errors.Is(err, ErrExpired) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			// The certificate is still valid: keep trying until it expires,
			// backing off so a refusing CA is not hammered once a second.
			failures++
			wait := min(time.Second<<min(failures, 6), time.Minute)
			r.Logf("renewal failed: %v; trying again in %s", err, wait)
			if err := sleep(ctx, wait); err != nil {
				return nil
			}
			continue
		}
		failures = 0
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func samePublicKey(a, b *x509.Certificate) bool {
	return bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo)
}
