package stepca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.step.sm/crypto/jose"
)

// Provisioner names in the generated CA.
const (
	AgentProvisioner = "agent-provisioner"
	OtherProvisioner = "other-provisioner"
)

// writeConfig creates root, intermediate, provisioner keys and ca.json in dir.
func writeConfig(dir, addr string, opts Options, password []byte) (rootPath, configPath string, err error) {
	rootKey, root, err := newCA("SLAPENIR Test Root CA", nil, nil, 10*365*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	interKey, inter, err := newCA("SLAPENIR Test Intermediate CA", root, rootKey, 5*365*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	rootPath = filepath.Join(dir, "root_ca.crt")
	interPath := filepath.Join(dir, "intermediate_ca.crt")
	interKeyPath := filepath.Join(dir, "intermediate_ca_key")
	if err := writePEM(rootPath, "CERTIFICATE", root.Raw); err != nil {
		return "", "", err
	}
	if err := writePEM(interPath, "CERTIFICATE", inter.Raw); err != nil {
		return "", "", err
	}
	der, err := x509.MarshalECPrivateKey(interKey)
	if err != nil {
		return "", "", err
	}
	if err := writePEM(interKeyPath, "EC PRIVATE KEY", der); err != nil {
		return "", "", err
	}

	claims := map[string]any{
		"minTLSCertDuration":     opts.MinDuration.String(),
		"maxTLSCertDuration":     opts.MaxDuration.String(),
		"defaultTLSCertDuration": opts.DefaultDuration.String(),
	}
	var provisioners []any
	for _, name := range []string{AgentProvisioner, OtherProvisioner} {
		k, err := provisionerKey(name, password)
		if err != nil {
			return "", "", err
		}
		provisioners = append(provisioners, map[string]any{
			"type": "JWK", "name": name, "key": k.public, "encryptedKey": k.encrypted, "claims": claims,
		})
	}
	cfg := map[string]any{
		"root":     rootPath,
		"crt":      interPath,
		"key":      interKeyPath,
		"address":  addr,
		"dnsNames": []string{"127.0.0.1", "localhost"},
		"logger":   map[string]any{"format": "text"},
		"db":       map[string]any{"type": "bbolt", "dataSource": filepath.Join(dir, "db")},
		"authority": map[string]any{
			"provisioners": provisioners,
		},
		"tls": map[string]any{
			"cipherSuites":  []string{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
			"minVersion":    1.2,
			"maxVersion":    1.3,
			"renegotiation": false,
		},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", "", err
	}
	configPath = filepath.Join(dir, "ca.json")
	if err := os.WriteFile(configPath, data, 0o600); err != nil {
		return "", "", err
	}
	return rootPath, configPath, nil
}

// provKey is a provisioner's key in the three forms a test needs.
type provKey struct {
	private   *jose.JSONWebKey
	public    *jose.JSONWebKey
	encrypted string // the JWE step-ca publishes as encryptedKey
}

var (
	provKeysMu sync.Mutex
	provKeys   = map[string]provKey{}
)

// provisionerKey generates a provisioner key once per test binary and
// reuses it for every CA: encrypting it (PBKDF2 with step's iteration count)
// takes seconds under -race, and distinct CAs never share a database, so
// sharing the key costs no isolation.
func provisionerKey(name string, password []byte) (provKey, error) {
	provKeysMu.Lock()
	defer provKeysMu.Unlock()
	if k, ok := provKeys[name]; ok {
		return k, nil
	}
	jwk, err := jose.GenerateJWK("EC", "P-256", "ES256", "sig", "", 0)
	if err != nil {
		return provKey{}, fmt.Errorf("cannot generate the key of provisioner %s: %w", name, err)
	}
	if jwk.KeyID, err = jose.Thumbprint(jwk); err != nil {
		return provKey{}, err
	}
	jwe, err := jose.EncryptJWK(jwk, password)
	if err != nil {
		return provKey{}, err
	}
	enc, err := jwe.CompactSerialize()
	if err != nil {
		return provKey{}, err
	}
	pub := jwk.Public()
	k := provKey{private: jwk, public: &pub, encrypted: enc}
	provKeys[name] = k
	return k, nil
}

// newCA makes a CA certificate: self-signed when parent is nil.
func newCA(cn string, parent *x509.Certificate, parentKey crypto.Signer, lifetime time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else {
		tmpl.MaxPathLenZero, tmpl.MaxPathLen = true, 0
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create CA certificate %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
