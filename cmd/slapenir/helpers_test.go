package main

import (
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/testutil/poll"
)

// buildBinary builds this command into a temporary directory, for tests of
// the real binary, and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slapenir")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeLoopback is a loopback host:port nothing listens on now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getOnceUp polls url until it answers 200 and returns the body: a server
// the test just started.
func getOnceUp(t *testing.T, url string) string {
	t.Helper()
	var body string
	poll.Until(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	return body
}

// bootstrapFrom runs `certs bootstrap` into dir/certs with the token in
// tokenFile, as the agent container does, and returns the enrolled chain;
// caLog is shown when it fails.
func bootstrapFrom(t *testing.T, bin, dir, tokenFile, caURL string, caLog fmt.Stringer) []*x509.Certificate {
	t.Helper()
	certs := filepath.Join(dir, "certs")
	boot := exec.Command(bin, "certs", "bootstrap", "--dir", certs)
	boot.Env = append(os.Environ(), "STEP_TOKEN=", "STEP_TOKEN_FILE="+tokenFile, "STEP_CA_URL="+caURL, "STEP_FINGERPRINT=")
	if b, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("certs bootstrap with the token: %v\n%s\n--- ca ---\n%s", err, b, caLog)
	}
	chain, err := certfile.ReadCerts(filepath.Join(certs, "cert.pem"))
	if err != nil {
		t.Fatalf("enrolled certificate: %v", err)
	}
	return chain
}
