package enroll

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// State is a certificate directory read back from disk.
type State struct {
	Chain   []*x509.Certificate // leaf first
	Root    *x509.Certificate
	KeyPair tls.Certificate // cert.pem + key.pem, for mTLS to the CA
}

// Leaf is the end-entity certificate.
func (s State) Leaf() *x509.Certificate { return s.Chain[0] }

// Load reads dir and checks that its key matches its certificate.
func Load(dir certfile.Dir) (State, error) {
	pair, err := tls.LoadX509KeyPair(dir.Cert(), dir.Key())
	if err != nil {
		return State{}, fmt.Errorf("enroll: cannot load %s with %s: %w (run `slapenir certs bootstrap` first)", dir.Cert(), dir.Key(), err)
	}
	chain, err := certfile.ReadCerts(dir.Cert())
	if err != nil {
		return State{}, err
	}
	roots, err := certfile.ReadCerts(dir.Root())
	if err != nil {
		return State{}, err
	}
	return State{Chain: chain, Root: roots[0], KeyPair: pair}, nil
}
