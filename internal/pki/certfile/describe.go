package certfile

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Fingerprint is the SHA-256 of the certificate's DER, in lower-case hex: the
// form step-ca and STEP_FINGERPRINT use.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Names returns the identities a certificate carries: its subject CN, then its
// DNS, IP, URI and e-mail SANs, without duplicates.
func Names(c *x509.Certificate) []string { return names(c, true) }

// ClientNames is Names without IP SANs: the names a client certificate
// proves about who it is (an address says where, not who).
func ClientNames(c *x509.Certificate) []string { return names(c, false) }

func names(c *x509.Certificate, withIPs bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(c.Subject.CommonName)
	for _, n := range c.DNSNames {
		add(n)
	}
	if withIPs {
		for _, ip := range c.IPAddresses {
			add(ip.String())
		}
	}
	for _, u := range c.URIs {
		add(u.String())
	}
	for _, e := range c.EmailAddresses {
		add(e)
	}
	return out
}

// KeyType names the certificate's public key, e.g. "ECDSA P-256".
func KeyType(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// Describe renders what `certs inspect` prints for one certificate.
func Describe(c *x509.Certificate, now time.Time) string {
	var b strings.Builder
	sans := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	sans = append(sans, c.EmailAddresses...)
	fmt.Fprintf(&b, "subject:     %s\n", c.Subject)
	fmt.Fprintf(&b, "SANs:        %s\n", strings.Join(sans, ", "))
	fmt.Fprintf(&b, "issuer:      %s\n", c.Issuer)
	fmt.Fprintf(&b, "not before:  %s\n", c.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "not after:   %s\n", c.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "time left:   %s\n", TimeLeft(c, now))
	fmt.Fprintf(&b, "key type:    %s\n", KeyType(c))
	fmt.Fprintf(&b, "is CA:       %t\n", c.IsCA)
	fmt.Fprintf(&b, "serial:      %s\n", c.SerialNumber)
	fmt.Fprintf(&b, "fingerprint: %s\n", Fingerprint(c))
	return b.String()
}

// TimeLeft says how long c remains valid at now, or that it is not yet or no
// longer valid.
func TimeLeft(c *x509.Certificate, now time.Time) string {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Sprintf("not valid yet (starts in %s)", c.NotBefore.Sub(now).Round(time.Second))
	case now.After(c.NotAfter):
		return fmt.Sprintf("EXPIRED %s ago", now.Sub(c.NotAfter).Round(time.Second))
	default:
		return c.NotAfter.Sub(now).Round(time.Second).String()
	}
}
