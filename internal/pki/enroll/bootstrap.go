package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/pki/token"
)

// Defaults shared with the seed's environment contract.
const (
	DefaultCAURL       = "https://ca:9000"
	DefaultProvisioner = "agent-provisioner"
	DefaultDir         = "/home/agent/certs"
)

// ErrUsage marks a mistake in the caller's input (missing, expired or foreign
// token, conflicting fingerprints): retrying cannot help, the user must change
// something. Test with errors.Is.
var ErrUsage = errors.New("enroll: invalid input")

// usageError carries its own sentence and matches ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Bootstrap describes one enrollment.
type Bootstrap struct {
	CAURL       string        // STEP_CA_URL
	Token       string        // STEP_TOKEN
	Provisioner string        // STEP_PROVISIONER: the token must be issued by it
	Fingerprint string        // STEP_FINGERPRINT; empty means the token's sha claim
	Insecure    bool          // trust the CA's root without any fingerprint
	Dir         certfile.Dir  // where cert.pem, key.pem, root_ca.pem go
	Timeout     time.Duration // total time to keep retrying an unreachable CA
	NotAfter    time.Duration // requested lifetime; 0 means the provisioner's default
	Force       bool          // enroll even when a valid certificate is present
	Logf        func(format string, args ...any)
	Now         func() time.Time
}

// Outcome says what Run did.
type Outcome struct {
	Kept bool              // an existing valid certificate was kept
	Leaf *x509.Certificate // the certificate now in Dir
}

// Run enrolls, unless a valid certificate that is not yet due for renewal is
// already in b.Dir.
func (b Bootstrap) Run(ctx context.Context) (Outcome, error) {
	b.defaults()
	if strings.TrimSpace(b.Token) == "" {
		return Outcome{}, usagef("STEP_TOKEN is not set: get a one-time enrollment token from the CA operator (`slapenir certs token <agent-name>` or `step ca token <agent-name>`) and export STEP_TOKEN")
	}
	if leaf, ok := b.existing(); ok {
		b.Logf("certificate %s for %q is valid until %s; keeping it", b.Dir.Cert(), leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
		return Outcome{Kept: true, Leaf: leaf}, nil
	}
	claims, err := token.ParseUnverified(b.Token)
	if err != nil {
		return Outcome{}, usagef("%v", err)
	}
	fingerprint, err := b.checkToken(claims)
	if err != nil {
		return Outcome{}, err
	}

	deadline := b.Now().Add(b.Timeout)
	var root *x509.Certificate
	err = retry(ctx, deadline, b.Logf, "fetch the root from "+b.CAURL, func() error {
		var err error
		root, err = stepca.FetchRoot(ctx, b.CAURL, fingerprint, b.Insecure)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}

	key, csr, err := newKeyAndCSR(claims)
	if err != nil {
		return Outcome{}, err
	}
	client := stepca.New(b.CAURL, root)
	var chain []*x509.Certificate
	err = retry(ctx, deadline, b.Logf, "sign at "+b.CAURL, func() error {
		var err error
		chain, err = client.Sign(ctx, csr, b.Token, b.NotAfter)
		return err
	})
	if err != nil {
		return Outcome{}, explainSign(err, claims, b.Provisioner, b.Now())
	}
	if err := verifyChain(chain, root, b.Now()); err != nil {
		return Outcome{}, err
	}
	if err := b.Dir.Write(certfile.Bundle{Chain: chain, Key: key, Root: root}); err != nil {
		return Outcome{}, err
	}
	b.Logf("enrolled %q: wrote %s, %s and %s (valid until %s)", chain[0].Subject.CommonName, b.Dir.Cert(), b.Dir.Key(), b.Dir.Root(), chain[0].NotAfter.UTC().Format(time.RFC3339))
	return Outcome{Leaf: chain[0]}, nil
}

func (b *Bootstrap) defaults() {
	if b.CAURL == "" {
		b.CAURL = DefaultCAURL
	}
	if b.Provisioner == "" {
		b.Provisioner = DefaultProvisioner
	}
	if b.Dir == "" {
		b.Dir = DefaultDir
	}
	if b.Timeout <= 0 {
		b.Timeout = 2 * time.Minute
	}
	if b.Logf == nil {
		b.Logf = func(string, ...any) {}
	}
	if b.Now == nil {
		b.Now = time.Now
	}
}

// existing returns the certificate in b.Dir when it is complete, matches its
// key, chains to root_ca.pem and is not yet due for renewal.
func (b Bootstrap) existing() (*x509.Certificate, bool) {
	if b.Force {
		return nil, false
	}
	st, err := Load(b.Dir)
	if err != nil {
		return nil, false
	}
	now := b.Now()
	if verifyChain(st.Chain, st.Root, now) != nil || !now.Before(DueAt(st.Leaf(), 0)) {
		return nil, false
	}
	return st.Leaf(), true
}

// checkToken refuses, before any network traffic, a token the CA would refuse
// for a reason we can name, and returns the root fingerprint to pin.
func (b Bootstrap) checkToken(c token.Claims) (string, error) {
	now := b.Now()
	if c.Issuer != b.Provisioner {
		return "", usagef("the token was issued by provisioner %q but STEP_PROVISIONER is %q: ask for a token from %q, or set STEP_PROVISIONER=%s if that provisioner is the right one", c.Issuer, b.Provisioner, b.Provisioner, c.Issuer)
	}
	if c.Subject == "" {
		return "", usagef("the token has no subject (sub claim); mint it with the agent's name")
	}
	if c.Expiry != nil && now.After(c.Expiry.Time()) {
		return "", usagef("the enrollment token for %q expired at %s (%s ago; tokens live 5 minutes): mint a new one with `slapenir certs token %s`", c.Subject, c.Expiry.Time().UTC().Format(time.RFC3339), now.Sub(c.Expiry.Time()).Round(time.Second), c.Subject)
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(now.Add(time.Minute)) {
		return "", usagef("the enrollment token for %q is not valid until %s but this machine's clock says %s: the clocks differ by %s; fix the time (NTP) here or where the token was minted", c.Subject, c.NotBefore.Time().UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), c.NotBefore.Time().Sub(now).Round(time.Second))
	}
	fp := strings.ToLower(strings.ReplaceAll(b.Fingerprint, ":", ""))
	switch {
	case fp != "" && c.SHA != "" && fp != c.SHA:
		return "", usagef("STEP_FINGERPRINT (%s) differs from the root fingerprint in the token (%s): one of them belongs to another CA; fix STEP_FINGERPRINT or get a token from this CA", fp, c.SHA)
	case fp == "":
		fp = c.SHA
	}
	if fp == "" && !b.Insecure {
		return "", usagef("nothing pins the CA's root: set STEP_FINGERPRINT (the root's SHA-256), use a token with a sha claim, or pass --insecure to trust whatever root %s serves", b.CAURL)
	}
	return fp, nil
}

// newKeyAndCSR makes a P-256 key and a CSR for the token's subject and SANs,
// as step-ca's JWK provisioner requires them to match the token.
func newKeyAndCSR(c token.Claims) (*ecdsa.PrivateKey, *x509.CertificateRequest, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: cannot generate a P-256 key: %w", err)
	}
	sans := c.SANs
	if len(sans) == 0 {
		sans = []string{c.Subject}
	}
	dns, ips, emails, uris := x509util.SplitSANs(sans)
	tmpl := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: c.Subject},
		DNSNames:       dns,
		IPAddresses:    ips,
		EmailAddresses: emails,
		URIs:           uris,
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: cannot create a CSR for %q: %w", c.Subject, err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: cannot parse the CSR just made: %w", err)
	}
	return key, csr, nil
}

// verifyChain checks that chain (leaf first) is valid at now and chains to root.
func verifyChain(chain []*x509.Certificate, root *x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return fmt.Errorf("enroll: empty certificate chain")
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("enroll: certificate %q does not verify against root %q: %w", chain[0].Subject.CommonName, root.Subject.CommonName, err)
	}
	return nil
}
