package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/devca"
)

// TestCARotationReachesOpenConnections (issue 23 item 7): rotating the
// client CA is how a certificate is revoked, and it must reach what the
// certificate already opened. A kept-alive connection from a certificate
// of CA1 is served; the proxy's client CA file is replaced with CA2 only;
// the next request on that same connection is refused with 403
// certificate_untrusted and audited, and a blind tunnel opened before the
// rotation is closed, its record saying why. An agent of CA2 is served.
func TestCARotationReachesOpenConnections(t *testing.T) {
	echo := rawEchoServer(t)
	up := echoUpstream(t)
	f := startMTLSProxy(t, nil, portOf(t, "http://"+echo.Addr().String()))
	// The pool follows its file; look at every use rather than once a
	// second, so the rotation is seen by the next request.
	f.srv.tls.ClientCA.SetInterval(time.Millisecond, t.Logf)
	cert := f.clientCert(t, devca.Request{CommonName: "agent-1"})
	dial := func() (*tls.Conn, *bufio.Reader) {
		t.Helper()
		c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.roots, Certificates: []tls.Certificate{*cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // only against a hang
		return c, bufio.NewReader(c)
	}

	// A kept-alive connection, served once.
	kept, keptR := dial()
	get := func() *http.Response {
		t.Helper()
		fmt.Fprintf(kept, "GET /x HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: %s\r\n\r\n", up.URL)
		resp, err := http.ReadResponse(keptR, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the rotation: status %d", resp.StatusCode)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// A blind tunnel, carrying bytes.
	tun, tunR := dial()
	fmt.Fprintf(tun, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", echo.Addr())
	if resp, err := http.ReadResponse(tunR, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	echoLine := func(s string) (string, error) {
		if _, err := io.WriteString(tun, s+"\n"); err != nil {
			return "", err
		}
		return tunR.ReadString('\n')
	}
	if got, err := echoLine("before"); err != nil || got != "before\n" {
		t.Fatalf("through the tunnel before the rotation: %q %v", got, err)
	}

	// The operator rotates the client CA: CA2 only, CA1 no longer trusted.
	ca2, err := devca.EnsureAt(t.TempDir(), "SLAPENIR test CA2")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca2.RootFile())
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(filepath.Dir(f.ca.RootFile()), "rotating.pem")
	if err := os.WriteFile(next, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, f.ca.RootFile()); err != nil {
		t.Fatal(err)
	}

	resp := get()
	if e := decodeError(t, resp); resp.StatusCode != http.StatusForbidden || e.Reason != "certificate_untrusted" {
		t.Fatalf("the kept-alive connection after the rotation: %d %+v, want 403 certificate_untrusted", resp.StatusCode, e)
	}

	// The tunnel is closed by the proxy's next look at the pool (about a
	// second); the deadline only guards against a hang.
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := echoLine("after")
		if err != nil {
			break
		}
		if got != "after\n" || time.Now().After(deadline) {
			t.Fatalf("the tunnel still carries bytes after the rotation: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var refused, cut bool
	for _, r := range f.records(t, 3) {
		if r.Reason != "certificate_untrusted" {
			continue
		}
		switch r.Mode {
		case modeTarget:
			refused = r.Status == http.StatusForbidden && r.Decision == decisionDeny
		case modeConnect:
			cut = r.Identity == "agent-1" && strings.Contains(r.Error, "client CA was reloaded")
		}
	}
	if !refused || !cut {
		t.Fatalf("records: request refused %v, tunnel cut %v; want both with reason certificate_untrusted:\n%+v", refused, cut, f.records(t, 3))
	}

	// The rotation revoked CA1's certificates, not the proxy: an agent of
	// CA2 is served.
	b, err := ca2.Issue(devca.Request{CommonName: "agent-2", Usage: devca.Client})
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.targetRequest(t, f.client(bundleCert(b)), up.URL); resp.StatusCode != http.StatusOK {
		t.Fatalf("an agent of the new CA: status %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
}
