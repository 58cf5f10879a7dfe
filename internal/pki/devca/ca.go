package devca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// rootLifetime is long: the root only ever signs short-lived leaves, and
// rotating it would invalidate every client certificate handed out.
const rootLifetime = 10 * 365 * 24 * time.Hour

// CA is a loaded development CA.
type CA struct {
	Root *x509.Certificate
	key  crypto.Signer
	dir  string
}

// Dir is where the CA's files live inside stateDir.
func Dir(stateDir string) string { return filepath.Join(stateDir, "dev-ca") }

// RootFile is the path of the root certificate clients should trust.
func (ca *CA) RootFile() string { return filepath.Join(ca.dir, certfile.RootName) }

func keyFile(dir string) string { return filepath.Join(dir, "root_ca_key.pem") }

// Ensure loads the development CA from stateDir, creating it on first use.
// Creation holds a file lock, so a proxy and a `certs dev-issue` started
// together agree on one root.
func Ensure(stateDir string) (*CA, error) {
	host, _ := os.Hostname()
	return EnsureAt(Dir(stateDir), "SLAPENIR development CA ("+host+")")
}

// EnsureAt is Ensure for a CA of another purpose: it loads or creates (once,
// under the same lock discipline) a root named commonName in dir. The proxy's
// TLS-interception CA is one.
func EnsureAt(dir, commonName string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca: cannot create %s: %w (is --state-dir writable?)", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devca: cannot open the lock in %s: %w", dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("devca: cannot lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ca, err := load(dir)
	if err == nil {
		return ca, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return create(dir, commonName)
}

// Open loads a CA from a certificate and key file made elsewhere, such as
// an intermediate issued by Step-CA for TLS interception.
func Open(certFile, keyFile string) (*CA, error) {
	certs, err := certfile.ReadCerts(certFile)
	if err != nil {
		return nil, err
	}
	key, err := certfile.ReadKey(keyFile)
	if err != nil {
		return nil, err
	}
	if !certfile.KeyMatches(certs[0], key) {
		return nil, fmt.Errorf("devca: key %s does not belong to certificate %s", keyFile, certFile)
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("devca: %s is not a CA certificate (it cannot sign others)", certFile)
	}
	return &CA{Root: certs[0], key: key, dir: filepath.Dir(certFile)}, nil
}

func load(dir string) (*CA, error) {
	roots, err := certfile.ReadCerts(filepath.Join(dir, certfile.RootName))
	if err != nil {
		return nil, err
	}
	key, err := certfile.ReadKey(keyFile(dir))
	if err != nil {
		return nil, err
	}
	if !certfile.KeyMatches(roots[0], key) {
		return nil, fmt.Errorf("devca: %s does not belong to %s; delete %s to start a new development CA (every dev-issued certificate must then be issued again)", keyFile(dir), filepath.Join(dir, certfile.RootName), dir)
	}
	return &CA{Root: roots[0], key: key, dir: dir}, nil
}

func create(dir, commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca: cannot generate the root key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"SLAPENIR"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(rootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devca: cannot self-sign the root: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := certfile.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := certfile.WriteAtomic(keyFile(dir), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := certfile.WriteAtomic(filepath.Join(dir, certfile.RootName), certfile.EncodeCerts(root), 0o644); err != nil {
		return nil, err
	}
	return &CA{Root: root, key: key, dir: dir}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("devca: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	return n
}
