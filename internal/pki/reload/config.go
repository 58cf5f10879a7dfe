package reload

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
