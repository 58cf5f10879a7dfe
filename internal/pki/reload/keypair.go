package reload

import (
	"crypto/tls"
	"fmt"
	"time"
)

// KeyPair is a certificate and key that follow certFile and keyFile.
type KeyPair struct {
	w *watched[*tls.Certificate]
}

// NewKeyPair loads certFile and keyFile; they must be valid now. Later
// changes are picked up by GetCertificate / GetClientCertificate.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	parse := func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the key pair %s + %s: %w", certFile, keyFile, err)
		}
		return &c, nil
	}
	w, err := newWatched("key pair", parse, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return &KeyPair{w: w}, nil
}

// SetInterval changes how often the files are checked (default 1s) and where
// reload messages go (default the standard logger). Tests use a short interval.
func (k *KeyPair) SetInterval(d time.Duration, logf func(format string, args ...any)) {
	k.w.configure(d, logf)
}

// Current returns the certificate to use now.
func (k *KeyPair) Current() *tls.Certificate { return k.w.get() }

// GetCertificate is for tls.Config.GetCertificate (servers).
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.w.get(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (the relay and
// other mTLS clients). It always presents the certificate; the server decides.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.w.get(), nil
}
