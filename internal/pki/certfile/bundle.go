package certfile

import (
	"bytes"
	"fmt"
	"os"
)

// systemRootFiles are where Debian/Ubuntu/Alpine/Wolfi, Fedora/RHEL and
// others keep the system's roots as one PEM file.
var systemRootFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/cert.pem",
}

// SystemRoots returns the system's root certificates as PEM and the file
// they came from.
func SystemRoots() ([]byte, string, error) {
	for _, f := range systemRootFiles {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
			return b, f, nil
		}
	}
	return nil, "", fmt.Errorf("certfile: no system root certificates in %v (install ca-certificates)", systemRootFiles)
}

// JoinPEM concatenates PEM documents, each ending in a newline.
func JoinPEM(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		p = bytes.TrimRight(p, "\n")
		if len(p) == 0 {
			continue
		}
		out = append(append(out, p...), '\n')
	}
	return out
}
