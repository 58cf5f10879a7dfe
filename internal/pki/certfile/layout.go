package certfile

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// The file names inside a certificate directory, shared by bootstrap, renew,
// dev-issue and the relay. The seed fixes them (/home/agent/certs/cert.pem…).
const (
	CertName = "cert.pem"
	KeyName  = "key.pem"
	RootName = "root_ca.pem"
	// BundleName is the one CA bundle the agent's tools trust (system
	// roots, the CA root, the proxy's interception CA): certs bundle
	// writes it, SSL_CERT_FILE and the rest point to it.
	BundleName = "ca-bundle.pem"
)

// Dir is a certificate directory laid out as the seed describes.
type Dir string

// Cert is the path of the leaf (plus intermediates) file.
func (d Dir) Cert() string { return filepath.Join(string(d), CertName) }

// Key is the path of the private key file (mode 0600).
func (d Dir) Key() string { return filepath.Join(string(d), KeyName) }

// Root is the path of the root CA file.
func (d Dir) Root() string { return filepath.Join(string(d), RootName) }

// CABundle is the path of the agent's CA bundle.
func (d Dir) CABundle() string { return filepath.Join(string(d), BundleName) }

// Bundle is what a CA hands back: a chain (leaf first) and the root it chains to.
type Bundle struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
	Root  *x509.Certificate
}

// Write stores b in d: the key first (so a cert never exists without its key),
// then the root, then the chain; each file is replaced atomically. The directory
// is created with 0700 when missing.
func (d Dir) Write(b Bundle) error {
	if len(b.Chain) == 0 || b.Key == nil || b.Root == nil {
		return fmt.Errorf("certfile: refusing to write an incomplete bundle to %s (need chain, key and root)", d)
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("certfile: cannot create %s: %w", d, err)
	}
	keyPEM, err := EncodeKey(b.Key)
	if err != nil {
		return err
	}
	if err := WriteAtomic(d.Key(), keyPEM, 0o600); err != nil {
		return err
	}
	if err := WriteAtomic(d.Root(), EncodeCerts(b.Root), 0o644); err != nil {
		return err
	}
	return WriteAtomic(d.Cert(), EncodeCerts(b.Chain...), 0o644)
}

// EncodeCerts returns the certificates as concatenated PEM blocks.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodeKey returns key as an unencrypted PKCS#8 PEM block.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certfile: cannot encode %T private key: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
