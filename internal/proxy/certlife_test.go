package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/devca"
)

// TestBlindTunnelEndsWhenTheCertificateExpires: a blind CONNECT tunnel
// opened with a certificate that then expires carries nothing after
// NotAfter. Requests are checked one by one (TestInterceptedRequests…),
// but a blind tunnel is one request that can last for hours: without a
// cut at NotAfter, an agent whose certificate ran out (or was not renewed
// because it was withdrawn) keeps its way out for as long as it keeps the
// tunnel busy.
func TestBlindTunnelEndsWhenTheCertificateExpires(t *testing.T) {
	ln := rawEchoServer(t)
	port := portOf(t, "http://"+ln.Addr().String())
	f := startMTLSProxy(t, nil, port)
	expires := time.Now().Add(1500 * time.Millisecond)
	cert := f.clientCert(t, devca.Request{CommonName: "agent-short", NotBefore: time.Now().Add(-time.Hour), Lifetime: time.Until(expires) + time.Hour})

	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.roots, Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // only against a hang
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", ln.Addr())
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q %v", status, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line
		t.Fatal(err)
	}
	echo := func(s string) (string, error) {
		if _, err := io.WriteString(c, s+"\n"); err != nil {
			return "", err
		}
		return br.ReadString('\n')
	}
	if got, err := echo("before"); err != nil || got != "before\n" {
		t.Fatalf("through the tunnel while the certificate is valid: %q %v", got, err)
	}
	time.Sleep(time.Until(cert.Leaf.NotAfter) + 300*time.Millisecond)
	if got, err := echo("after"); err == nil {
		t.Fatalf("the tunnel still carries bytes after the certificate expired: %q", got)
	}
	rec := findRecord(t, f.records(t, 1), "certificate_expired")
	if rec.Mode != modeConnect || rec.Identity != "agent-short" {
		t.Fatalf("the tunnel's record: %+v", rec)
	}
}

// rawEchoServer is a TCP server on loopback that sends every connection's
// bytes back: the other end of a blind tunnel.
func rawEchoServer(t *testing.T) net.Listener {
	ln := listenLoopback(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln
}
