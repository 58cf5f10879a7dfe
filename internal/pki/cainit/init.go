package cainit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"go.step.sm/crypto/jose"
)

// Files in Dir.
const (
	ConfigFile   = "ca.json"
	RootFile     = "root_ca.crt"
	PasswordFile = "password"
)

// Options describe the CA to create.
type Options struct {
	Dir      string   // where everything goes; created 0700
	Name     string   // "SLAPENIR" → "SLAPENIR Root CA", "SLAPENIR Intermediate CA"
	Address  string   // what step-ca listens on: ":9000"
	DNSNames []string // names of the CA's own TLS certificate: "ca", "localhost"
	// Provisioners are JWK provisioners, each with its key; see NewKey.
	Provisioners []Key
	// Leaf lifetimes step-ca allows and defaults to.
	DefaultDuration, MinDuration, MaxDuration time.Duration
	// Root and RootKey, when set, are the root the intermediate is issued
	// from (one made ahead, such as a Helm chart's, so that clients can be
	// given it before the CA first starts); nil makes a new one. The key
	// is used once and not written to Dir.
	Root    *x509.Certificate
	RootKey crypto.Signer
}

// Key is a JWK provisioner's key: the private key (to mint tokens in the
// same process, as tests do) and the form step-ca publishes.
type Key struct {
	Name      string
	Private   *jose.JSONWebKey
	public    *jose.JSONWebKey
	encrypted string // JWE of Private under the password
}

// NewKey generates a provisioner key and encrypts it under password.
// Encryption runs PBKDF2 with step's iteration count: about a second.
func NewKey(name string, password []byte) (Key, error) {
	jwk, err := jose.GenerateJWK("EC", "P-256", "ES256", "sig", "", 0)
	if err != nil {
		return Key{}, fmt.Errorf("cainit: cannot generate the key of provisioner %s: %w", name, err)
	}
	if jwk.KeyID, err = jose.Thumbprint(jwk); err != nil {
		return Key{}, err
	}
	jwe, err := jose.EncryptJWK(jwk, password)
	if err != nil {
		return Key{}, err
	}
	enc, err := jwe.CompactSerialize()
	if err != nil {
		return Key{}, err
	}
	pub := jwk.Public()
	return Key{Name: name, Private: jwk, public: &pub, encrypted: enc}, nil
}

// Exists reports whether dir already holds a configuration.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ConfigFile))
	return err == nil
}

// Init writes the CA into o.Dir and returns the paths of ca.json and the
// root certificate. It refuses a directory that already has a ca.json:
// a new root would orphan every certificate the old one issued.
func Init(o Options) (configPath, rootPath string, err error) {
	if Exists(o.Dir) {
		return "", "", fmt.Errorf("cainit: %s already holds a CA (%s); remove it first to start a new one", o.Dir, ConfigFile)
	}
	if len(o.Provisioners) == 0 {
		return "", "", errors.New("cainit: a CA needs at least one provisioner")
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "db"), 0o700); err != nil {
		return "", "", fmt.Errorf("cainit: %w", err)
	}
	var rootKey crypto.Signer = o.RootKey
	root := o.Root
	if root == nil || rootKey == nil {
		var k *ecdsa.PrivateKey
		if k, root, err = newCA(o.Name+" Root CA", nil, nil, 10*365*24*time.Hour); err != nil {
			return "", "", err
		}
		rootKey = k
	} else if !root.IsCA {
		return "", "", fmt.Errorf("cainit: the given root %q is not a CA certificate", root.Subject.CommonName)
	}
	interKey, inter, err := newCA(o.Name+" Intermediate CA", root, rootKey, min(5*365*24*time.Hour, time.Until(root.NotAfter)))
	if err != nil {
		return "", "", err
	}
	rootPath = filepath.Join(o.Dir, RootFile)
	interPath := filepath.Join(o.Dir, "intermediate_ca.crt")
	interKeyPath := filepath.Join(o.Dir, "intermediate_ca_key")
	der, err := x509.MarshalECPrivateKey(interKey)
	if err != nil {
		return "", "", err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{rootPath, "CERTIFICATE", root.Raw}, {interPath, "CERTIFICATE", inter.Raw}, {interKeyPath, "EC PRIVATE KEY", der}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return "", "", fmt.Errorf("cainit: %w", err)
		}
	}
	claims := map[string]any{
		"minTLSCertDuration":     o.MinDuration.String(),
		"maxTLSCertDuration":     o.MaxDuration.String(),
		"defaultTLSCertDuration": o.DefaultDuration.String(),
	}
	var provisioners []any
	for _, k := range o.Provisioners {
		provisioners = append(provisioners, map[string]any{
			"type": "JWK", "name": k.Name, "key": k.public, "encryptedKey": k.encrypted, "claims": claims,
		})
	}
	cfg := map[string]any{
		"root":     rootPath,
		"crt":      interPath,
		"key":      interKeyPath,
		"address":  o.Address,
		"dnsNames": o.DNSNames,
		"logger":   map[string]any{"format": "text"},
		"db":       map[string]any{"type": "bbolt", "dataSource": filepath.Join(o.Dir, "db", "bbolt")},
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
	configPath = filepath.Join(o.Dir, ConfigFile)
	if err := os.WriteFile(configPath, data, 0o600); err != nil {
		return "", "", fmt.Errorf("cainit: %w", err)
	}
	return configPath, rootPath, nil
}

// LoadOrCreatePassword reads the provisioner password kept in dir, creating
// a random one (0600) on first use.
func LoadOrCreatePassword(dir string) ([]byte, error) {
	path := filepath.Join(dir, PasswordFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cainit: reading the provisioner password: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	pw := []byte(fmt.Sprintf("%x", raw))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cainit: %w", err)
	}
	if err := os.WriteFile(path, pw, 0o600); err != nil {
		return nil, fmt.Errorf("cainit: writing the provisioner password: %w", err)
	}
	return pw, nil
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
		return nil, nil, fmt.Errorf("cainit: cannot create CA certificate %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}
