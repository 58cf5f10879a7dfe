package stepca

import (
	"crypto/x509"
	"encoding/pem"
)

func pemCSR(csr *x509.CertificateRequest) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})
}
