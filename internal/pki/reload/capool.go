package reload

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// CAPool is a set of CA certificates that follows a PEM file.
type CAPool struct {
	w *watched[*x509.CertPool]
}

// NewCAPool loads file (one or more PEM certificates); it must be valid now.
func NewCAPool(file string) (*CAPool, error) {
	parse := func() (*x509.CertPool, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read CA file %s: %w", file, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
		}
		return pool, nil
	}
	w, err := newWatched("CA pool", parse, file)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return &CAPool{w: w}, nil
}

// SetInterval: see KeyPair.SetInterval.
func (p *CAPool) SetInterval(d time.Duration, logf func(format string, args ...any)) {
	p.w.configure(d, logf)
}

// Pool returns the current pool. Callers must not modify it.
func (p *CAPool) Pool() *x509.CertPool { return p.w.get() }
