package certfile

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ReadCerts reads every CERTIFICATE block of a PEM file, in order.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certfile: cannot read %s: %w", path, err)
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("certfile: %s: %w", path, err)
	}
	return certs, nil
}

// ParseCerts parses every CERTIFICATE block in data; other blocks are skipped.
// It fails when there is none, so an empty or truncated file is never taken for
// a valid chain.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate #%d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no PEM CERTIFICATE block found (is this a certificate file?)")
	}
	return certs, nil
}
