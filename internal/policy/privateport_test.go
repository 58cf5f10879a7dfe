package policy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestPrivateAllowWithPort: a private_allow entry with a port allows that
// address or name on that port only; a check that does not know the port
// (0) gets nothing from it.
func TestPrivateAllowWithPort(t *testing.T) {
	p := mustNew(t, Config{PrivateAllow: []string{"127.0.0.1:11434", "[::1]:11434", "ollama.internal:8080", "10.0.0.0/8"}})
	for _, c := range []struct {
		host, ip string
		port     int
		allow    bool
		rule     string
	}{
		{"127.0.0.1", "127.0.0.1", 11434, true, "127.0.0.1:11434"},
		{"localhost", "127.0.0.1", 11434, true, "127.0.0.1:11434"},
		{"127.0.0.1", "::ffff:127.0.0.1", 11434, true, "127.0.0.1:11434"},
		{"127.0.0.1", "127.0.0.1", 8080, false, "127.0.0.0/8"},
		{"127.0.0.1", "127.0.0.1", 0, false, "127.0.0.0/8"},
		{"127.0.0.1", "127.0.0.2", 11434, false, "127.0.0.0/8"},
		{"::1", "::1", 11434, true, "[::1]:11434"},
		{"::1", "::1", 22, false, "::1/128"},
		{"ollama.internal", "192.168.5.5", 8080, true, "ollama.internal:8080"},
		{"OLLAMA.internal.", "192.168.5.5", 8080, true, "ollama.internal:8080"},
		{"ollama.internal", "192.168.5.5", 8081, false, "192.168.0.0/16"},
		{"other.example", "10.1.2.3", 22, true, "10.0.0.0/8"},
	} {
		d := p.CheckAddr(c.host, netip.MustParseAddr(c.ip), c.port)
		if d.Allow != c.allow || d.Rule != c.rule || (c.allow && d.Reason != ReasonPrivateAllow) || (!c.allow && d.Reason != ReasonPrivateAddress) {
			t.Errorf("CheckAddr(%q, %s, %d) = %+v, want allow=%v rule %q", c.host, c.ip, c.port, d, c.allow, c.rule)
		}
	}
	if !p.NamesPrivate("ollama.internal") || p.NamesPrivate("other.internal") {
		t.Error("NamesPrivate does not see a private_allow name bound to a port")
	}
	for _, bad := range []string{"127.0.0.1:0", "10.0.0.0/8:80", "[::1]:99999", "h:0"} {
		if err := CheckPrivateAllow(bad); err == nil {
			t.Errorf("CheckPrivateAllow(%q) accepted it", bad)
		}
	}
}

// TestDialerRefusesOtherPortsOfAPortBoundAddress: with private_allow
// naming 127.0.0.1 on one port, the Dialer connects to that port and
// refuses every other port of the same address before connecting, with the
// refusal's reason: an agent allowed the host's Ollama does not get the
// rest of its loopback.
func TestDialerRefusesOtherPortsOfAPortBoundAddress(t *testing.T) {
	allowedPort, allowedArrived := listen(t, "127.0.0.1")
	canaryPort, canaryArrived := listen(t, "127.0.0.1")
	d := &Dialer{Policy: mustNew(t, Config{PrivateAllow: []string{"127.0.0.1:" + strconv.Itoa(allowedPort)}})}

	if got := dialArrival(t, d, "127.0.0.1", allowedPort, allowedArrived); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the allowed port's connection arrived at %s", got)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		conn, err := d.DialContext(context.Background(), "tcp4", net.JoinHostPort(host, strconv.Itoa(canaryPort)))
		var refused *RefusedError
		if err == nil {
			conn.Close()
			t.Fatalf("dialled %s:%d, a port private_allow does not name", host, canaryPort)
		}
		if !errors.As(err, &refused) || refused.Decision.Reason != ReasonPrivateAddress || refused.Port != canaryPort {
			t.Errorf("dial %s:%d: %v, want a private_address refusal for that port", host, canaryPort, err)
		}
	}
	checks, err := d.Check(context.Background(), "127.0.0.1", canaryPort)
	if err != nil || len(checks) != 1 || checks[0].Decision.Allow {
		t.Errorf("Check(127.0.0.1, %d) = %+v, %v: want one refused address", canaryPort, checks, err)
	}
	select {
	case a := <-canaryArrived:
		t.Errorf("a connection reached the canary (at %s)", a)
	case <-time.After(100 * time.Millisecond):
	}
}
