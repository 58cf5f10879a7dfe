package enforcetest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// ServeHello listens on addr (port 0 picks one) in the caller's namespace and
// answers every connection with "hello\n", so a dialer that reads it proves
// the reply came back through the firewall. It stops when the test ends.
func ServeHello(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// DialHello connects to ap within timeout and reads the greeting.
func DialHello(ap netip.AddrPort, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", ap.String(), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting from %s: %w", ap, err)
	}
	if line != "hello\n" {
		return fmt.Errorf("greeting from %s = %q, want hello", ap, line)
	}
	return nil
}
