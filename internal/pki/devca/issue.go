package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// Default leaf lifetimes: short, because renewal is cheap and a leaked dev
// certificate should not outlive a working day.
const (
	DefaultServerLifetime = 24 * time.Hour
	DefaultClientLifetime = 24 * time.Hour
)

// Usage says what a leaf is for.
type Usage int

const (
	Client Usage = 1 << iota // TLS client authentication (agents, the relay)
	Server                   // TLS server authentication (the proxy)
)

// Request describes one leaf certificate.
type Request struct {
	CommonName string
	// SANs are DNS names, IP addresses, URIs (with a scheme) or e-mail
	// addresses; the common name is added as a DNS name when it is one.
	SANs     []string
	Usage    Usage
	Lifetime time.Duration // 0 means the default for the usage
	// NotBefore defaults to a minute ago (tolerating small clock skew);
	// tests set it to issue not-yet-valid or expired certificates.
	NotBefore time.Time
}

// Issue signs a new P-256 leaf for r and returns it with its key and the root.
func (ca *CA) Issue(r Request) (certfile.Bundle, error) {
	if r.CommonName == "" {
		return certfile.Bundle{}, fmt.Errorf("devca: a certificate needs a name (the agent or host it is for)")
	}
	if r.Usage == 0 {
		r.Usage = Client
	}
	if r.Lifetime <= 0 {
		r.Lifetime = DefaultClientLifetime
		if r.Usage&Server != 0 {
			r.Lifetime = DefaultServerLifetime
		}
	}
	if r.NotBefore.IsZero() {
		r.NotBefore = time.Now().Add(-time.Minute)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certfile.Bundle{}, fmt.Errorf("devca: cannot generate a key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: r.CommonName},
		NotBefore:    r.NotBefore,
		NotAfter:     r.NotBefore.Add(r.Lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if r.Usage&Client != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if r.Usage&Server != 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if err := addSANs(tmpl, append([]string{r.CommonName}, r.SANs...)); err != nil {
		return certfile.Bundle{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Root, key.Public(), ca.key)
	if err != nil {
		return certfile.Bundle{}, fmt.Errorf("devca: cannot sign a certificate for %q: %w", r.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return certfile.Bundle{}, err
	}
	return certfile.Bundle{Chain: []*x509.Certificate{leaf}, Key: key, Root: ca.Root}, nil
}

// IssueTo issues r and writes cert.pem, key.pem (0600) and root_ca.pem to dir,
// the layout `certs bootstrap` produces, so the relay and agents use either.
func (ca *CA) IssueTo(dir certfile.Dir, r Request) (*x509.Certificate, error) {
	b, err := ca.Issue(r)
	if err != nil {
		return nil, err
	}
	if err := dir.Write(b); err != nil {
		return nil, err
	}
	return b.Chain[0], nil
}

// addSANs sorts each name into the SAN field it belongs to, skipping duplicates.
func addSANs(tmpl *x509.Certificate, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		switch {
		case net.ParseIP(n) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(n))
		case strings.Contains(n, "://"):
			u, err := url.Parse(n)
			if err != nil {
				return fmt.Errorf("devca: SAN %q is not a valid URI: %w", n, err)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		case strings.Contains(n, "@"):
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, n)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return nil
}
