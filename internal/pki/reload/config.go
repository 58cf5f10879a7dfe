package reload

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
)

// ServerConfig is the TLS configuration of an mTLS server whose certificate
// follows kp. Client certificates are requested but not checked during the
// handshake: a client without one (or with a bad one) must still reach
// /health and get a refusal it can read, so the server calls VerifyClient per
// connection or request, against the current CA pool, and audits the reason.
func ServerConfig(kp *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: kp.GetCertificate,
		ClientAuth:     tls.RequestClientCert,
	}
}

// ClientConfig is the TLS configuration of an mTLS client (the relay): it
// presents kp's current certificate and verifies the server against the
// current roots for serverName. Verification happens in VerifyConnection, so
// a rotated root_ca.pem applies on the next connection.
func ClientConfig(kp *KeyPair, roots *CAPool, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		ServerName:           serverName,
		GetClientCertificate: kp.GetClientCertificate,
		// The standard verification would use a pool fixed at creation;
		// VerifyConnection below does the same checks with the current one.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("server %s presented no certificate", serverName)
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         roots.Pool(),
				Intermediates: inter,
				DNSName:       serverName,
			})
			if err != nil {
				return fmt.Errorf("server certificate of %s does not verify against the CA pool: %w", serverName, err)
			}
			return nil
		},
	}
}

// ResumingClient hands out ClientConfig's configuration with TLS session
// resumption on, for a client that opens many connections to one server
// (the relay to the proxy): a resumed handshake skips the certificates and
// their signatures. A resumed session carries the client certificate it was
// made with, so each certificate gets a configuration and session cache of
// its own: after a renewal, the next connection presents the new
// certificate in a full handshake and never resumes a session of the old
// one (which the server would refuse once it expires).
type ResumingClient struct {
	kp   *KeyPair
	base *tls.Config

	mu   sync.Mutex
	cert *tls.Certificate // the certificate cfg presents
	cfg  *tls.Config
}

// sessionsPerCertificate bounds a cache: the relay talks to one proxy.
const sessionsPerCertificate = 16

// NewResumingClient is ClientConfig(kp, roots, serverName) with resumption.
func NewResumingClient(kp *KeyPair, roots *CAPool, serverName string) *ResumingClient {
	return &ResumingClient{kp: kp, base: ClientConfig(kp, roots, serverName)}
}

// Config is the configuration for the next connection.
func (r *ResumingClient) Config() *tls.Config {
	cur := r.kp.Current()
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur != r.cert {
		cfg := r.base.Clone()
		// Pinned, so that a renewal during this handshake cannot put a
		// session of the new certificate in the old one's cache or the
		// other way round.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cur, nil }
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(sessionsPerCertificate)
		r.cert, r.cfg = cur, cfg
	}
	return r.cfg
}
