package stepca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.step.sm/crypto/jose"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/token"
)

// Options shape the test CA; zero values get short, test-friendly durations.
type Options struct {
	DefaultDuration time.Duration // default leaf lifetime (5m)
	MinDuration     time.Duration // shortest lifetime a sign request may ask (1s)
	MaxDuration     time.Duration // longest (24h)
}

// CA is a running (or stopped) step-ca.
type CA struct {
	URL             string // https://127.0.0.1:PORT
	RootFingerprint string // hex SHA-256 of the root, as STEP_FINGERPRINT wants
	Root            *x509.Certificate
	RootPEM         string // path of the root certificate
	ConfigPath      string // path of ca.json
	Provisioner     string // "agent-provisioner"
	PasswordFile    string // decrypts both provisioners' keys
	Dir             string

	t       testing.TB
	bin     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start builds (once) and starts a step-ca for the test; it is stopped when
// the test ends.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	if opts.DefaultDuration == 0 {
		opts.DefaultDuration = 5 * time.Minute
	}
	if opts.MinDuration == 0 {
		opts.MinDuration = time.Second
	}
	if opts.MaxDuration == 0 {
		opts.MaxDuration = 24 * time.Hour
	}
	bin := Binary(t)
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	password := []byte("test-provisioner-password")
	passFile := filepath.Join(dir, "password.txt")
	if err := os.WriteFile(passFile, password, 0o600); err != nil {
		t.Fatal(err)
	}
	rootPath, cfgPath, err := writeConfig(dir, addr, opts, password)
	if err != nil {
		t.Fatalf("step-ca: writing the CA configuration: %v", err)
	}
	roots, err := certfile.ReadCerts(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{
		URL:             "https://" + addr,
		RootFingerprint: certfile.Fingerprint(roots[0]),
		Root:            roots[0],
		RootPEM:         rootPath,
		ConfigPath:      cfgPath,
		Provisioner:     AgentProvisioner,
		PasswordFile:    passFile,
		Dir:             dir,
		t:               t,
		bin:             bin,
		logPath:         filepath.Join(dir, "step-ca.log"),
	}
	t.Cleanup(ca.Stop)
	ca.Restart()
	return ca
}

// Restart starts the CA again after Stop, on the same address and database,
// and waits until it answers /health.
func (ca *CA) Restart() {
	ca.t.Helper()
	if ca.cmd != nil {
		ca.t.Fatal("step-ca: Restart called while running; call Stop first")
	}
	logf, err := os.OpenFile(ca.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		ca.t.Fatal(err)
	}
	cmd := exec.Command(ca.bin, ca.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		ca.t.Fatalf("step-ca: cannot start %s: %v", ca.bin, err)
	}
	ca.cmd = cmd
	ca.done = make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(ca.done)
	}()
	if err := ca.waitHealthy(30 * time.Second); err != nil {
		ca.t.Fatalf("step-ca did not become healthy: %v\n--- step-ca log ---\n%s", err, ca.Log())
	}
}

// Stop terminates the CA and waits for it; safe to call twice.
func (ca *CA) Stop() {
	if ca.cmd == nil {
		return
	}
	ca.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ca.done:
	case <-time.After(10 * time.Second):
		ca.cmd.Process.Kill()
		<-ca.done
	}
	ca.cmd = nil
}

// Log returns what step-ca printed so far, for failure messages.
func (ca *CA) Log() string {
	b, _ := os.ReadFile(ca.logPath)
	return string(b)
}

// Token mints a one-time token for subject from the named provisioner (empty
// means agent-provisioner), reading its key from ca.json; now sets the
// token's issue time (zero means now).
func (ca *CA) Token(subject, provisioner string, now time.Time, sans ...string) string {
	ca.t.Helper()
	if provisioner == "" {
		provisioner = ca.Provisioner
	}
	tok, err := token.Mint(token.Request{Key: ca.SigningKey(provisioner), Provisioner: provisioner, CAURL: ca.URL, Subject: subject, SANs: sans, RootSHA: ca.RootFingerprint, Now: now})
	if err != nil {
		ca.t.Fatal(err)
	}
	return tok
}

// SigningKey returns the private key of a provisioner (the one its
// encryptedKey in ca.json decrypts to), for minting tokens in tests.
func (ca *CA) SigningKey(provisioner string) *jose.JSONWebKey {
	ca.t.Helper()
	provKeysMu.Lock()
	k, ok := provKeys[provisioner]
	provKeysMu.Unlock()
	if !ok {
		ca.t.Fatalf("step-ca: no provisioner %q in this CA (have %q and %q)", provisioner, AgentProvisioner, OtherProvisioner)
	}
	return k.Private
}

func (ca *CA) waitHealthy(limit time.Duration) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: nil}}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ca.URL+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /health answered %s", resp.Status)
		}
		last = err
		select {
		case <-ca.done:
			return fmt.Errorf("step-ca exited: %v", last)
		case <-ctx.Done():
			return fmt.Errorf("after %s: %v", limit, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr picks a port the kernel considers free. Another process
// could take it before step-ca binds; Restart's health check then fails loudly.
func freeLoopbackAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
