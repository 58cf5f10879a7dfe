// Package tlsline is a one-line-question TLS server and client on loopback,
// for tests of certificate reloading and client verification: the server
// answers every line a client sends with what a test's function makes of
// that connection's TLS state, so a test can ask, on a connection opened
// before or after a renewal, whom the server sees.
//
// It must only be imported from tests. It listens on 127.0.0.1 only and
// closes everything it opened when the test ends.
package tlsline

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Serve listens with cfg on a free loopback port and returns its address.
// For each line a client sends it writes back answer(state) and a newline;
// a connection whose handshake fails is closed without an answer.
func Serve(t testing.TB, cfg *tls.Config, answer func(*tls.ConnectionState) string) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("tlsline: listen on loopback: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { answerLines(c.(*tls.Conn), answer) })
		}
	})
	return l.Addr().String()
}

func answerLines(c *tls.Conn, answer func(*tls.ConnectionState) string) {
	defer c.Close()
	if c.Handshake() != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		st := c.ConnectionState()
		fmt.Fprintln(c, answer(&st))
	}
}

// Conn is one client connection to a Serve server.
type Conn struct {
	*tls.Conn
	r *bufio.Reader
}

// Dial connects to addr with cfg and completes the handshake; the test fails
// if either does. The connection is closed when the test ends.
func Dial(t testing.TB, addr string, cfg *tls.Config) *Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tlsline: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{Conn: c, r: bufio.NewReader(c)}
}

// Ask sends one line and returns the server's answer without its newline.
func (c *Conn) Ask(t testing.TB) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, "who am i"); err != nil {
		t.Fatalf("tlsline: write to %s: %v", c.RemoteAddr(), err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("tlsline: read the answer from %s: %v", c.RemoteAddr(), err)
	}
	return strings.TrimSpace(line)
}

// ServerSerial is the serial number of the certificate the server presented
// on this connection's handshake.
func (c *Conn) ServerSerial() string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
