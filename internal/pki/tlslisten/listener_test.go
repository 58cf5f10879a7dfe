package tlslisten_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/pki/tlslisten"
)

// start serves HTTP over tlslisten with a dev CA server certificate and
// returns the address and a client trusting that CA.
func start(t *testing.T) (string, *http.Client) {
	t.Helper()
	ca, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := certfile.Dir(t.TempDir())
	if _, err := ca.IssueTo(dir, devca.Request{CommonName: "127.0.0.1", Usage: devca.Server}); err != nil {
		t.Fatal(err)
	}
	kp, err := reload.NewKeyPair(dir.Cert(), dir.Key())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := tlslisten.New(raw, reload.ServerConfig(kp), "")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over %s", map[bool]string{true: "TLS", false: "plaintext"}[r.TLS != nil])
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ca.Root)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return l.Addr().String(), client
}

func TestTLSClientsServed(t *testing.T) {
	addr, client := start(t)
	resp, err := client.Get("https://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello over TLS" {
		t.Errorf("body = %q", body)
	}
}

func TestPlaintextClientGetsClearAnswer(t *testing.T) {
	addr, client := start(t)
	resp, err := http.Get("http://" + addr + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "requires TLS with a client certificate") {
		t.Errorf("plaintext request: %d %q", resp.StatusCode, body)
	}
	// The plaintext client did not disturb TLS clients.
	if resp, err := client.Get("https://" + addr + "/"); err != nil {
		t.Fatalf("TLS after plaintext: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestSilentClientDoesNotBlockOthers(t *testing.T) {
	addr, client := start(t)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("TLS client behind a silent one: %v", err)
	}
	resp.Body.Close()
}
