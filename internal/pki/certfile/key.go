package certfile

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ReadKey reads an unencrypted PKCS#8, SEC 1 (EC) or PKCS#1 (RSA) private key.
// The error names the file, never its content.
func ReadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certfile: cannot read key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("certfile: %s holds no PEM block (is it a private key?)", path)
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("certfile: %s is not a usable private key (%s block; encrypted keys are not supported): %w", path, block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certfile: %s holds a %T, which cannot sign", path, key)
	}
	return signer, nil
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	return err == nil && bytes.Equal(pub, cert.RawSubjectPublicKeyInfo)
}
