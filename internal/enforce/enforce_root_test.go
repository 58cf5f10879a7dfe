package enforce

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/enforce/enforcetest"

	"golang.org/x/sys/unix"
)

// udpSink listens for UDP on addr in the current namespace and reports every
// datagram it gets.
func udpSink(t *testing.T, addr string) (netip.AddrPort, <-chan string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("listen udp %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String()), got
}

func sendUDP(ap netip.AddrPort, payload string) error {
	c, err := net.Dial("udp", ap.String())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(payload))
	return err
}

// ping sends one ICMP echo request to dst from a raw socket; with wantReply it
// also waits for the echo reply.
func ping(dst netip.Addr, wantReply bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("raw icmp socket: %w", err)
	}
	defer unix.Close(fd)
	msg := []byte{8, 0, 0, 0, 0x51, 0xa9, 0, 1}
	binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return err
	}
	if !wantReply {
		return nil
	}
	tv := unix.NsecToTimeval((3 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("wait for echo reply from %s: %w", dst, err)
		}
		ihl := int(buf[0]&0x0f) * 4
		if n >= ihl+8 && buf[ihl] == 0 && buf[ihl+4] == 0x51 && buf[ihl+5] == 0xa9 {
			return nil
		}
	}
}

func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestEnforceLocksTheNamespaceDown installs the rules in a namespace of our
// own and probes every kind of traffic from inside it, each probe first run
// without the rules to show that it is the rules that stop it.
func TestEnforceLocksTheNamespaceDown(t *testing.T) {
	tn := enforcetest.New(t)
	host := tn.HostIP.String()
	proxy := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	ca := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	canary := enforcetest.ServeHello(t, net.JoinHostPort(host, "0"))
	ssh := enforcetest.ServeHello(t, net.JoinHostPort(host, "22"))
	dnsTCP := enforcetest.ServeHello(t, net.JoinHostPort(host, "53"))
	v6 := enforcetest.ServeHello(t, net.JoinHostPort(tn.HostIP6.String(), "0"))
	dnsUDP, dnsGot := udpSink(t, net.JoinHostPort(host, "53"))
	otherUDP, _ := udpSink(t, net.JoinHostPort(host, "0"))
	otherDNS, _ := udpSink(t, net.JoinHostPort(tn.HostIP2.String(), "53"))

	var loop4, loop6, inbound netip.AddrPort
	if err := tn.Do(func() error {
		loop4 = enforcetest.ServeHello(t, "127.0.0.1:0")
		loop6 = enforcetest.ServeHello(t, "[::1]:0")
		inbound = enforcetest.ServeHello(t, net.JoinHostPort(tn.AgentIP.String(), "0"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Without the rules everything gets through.
	if err := tn.Do(func() error {
		for _, ap := range []netip.AddrPort{canary, ssh, v6} {
			if err := enforcetest.DialHello(ap, 5*time.Second); err != nil {
				return fmt.Errorf("control dial %s: %w", ap, err)
			}
		}
		if err := sendUDP(otherUDP, "x"); err != nil {
			return fmt.Errorf("control udp: %w", err)
		}
		return ping(tn.HostIP, true)
	}); err != nil {
		t.Fatalf("without rules: %v", err)
	}
	if err := enforcetest.DialHello(inbound, 5*time.Second); err != nil {
		t.Fatalf("without rules, inbound connection: %v", err)
	}

	policy := Policy{
		Proxy: []netip.AddrPort{proxy},
		CA:    []netip.AddrPort{ca},
		DNS:   tn.HostIP,
	}
	if err := Apply(Build(policy), target(tn)); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	err := tn.Do(func() error {
		for name, ap := range map[string]netip.AddrPort{"proxy": proxy, "CA": ca, "DNS over TCP": dnsTCP, "loopback v4": loop4, "loopback v6": loop6} {
			if err := enforcetest.DialHello(ap, 5*time.Second); err != nil {
				t.Errorf("%s %s: %v, want reachable with its reply", name, ap, err)
			}
		}
		for name, ap := range map[string]netip.AddrPort{"canary": canary, "SSH without --allow-ssh": ssh, "IPv6": v6} {
			mustBeDropped(t, fmt.Sprintf("%s %s", name, ap), enforcetest.DialHello(ap, blockWait))
		}
		if err := sendUDP(dnsUDP, "query"); err != nil {
			t.Errorf("DNS over UDP to the resolver: %v", err)
		}
		mustBeDropped(t, "UDP to another port", sendUDP(otherUDP, "leak"))
		mustBeDropped(t, "UDP to port 53 of another address", sendUDP(otherDNS, "leak"))
		mustBeDropped(t, "ICMP echo", ping(tn.HostIP, false))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-dnsGot:
		if got != "query" {
			t.Errorf("resolver got %q, want query", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("resolver never got the DNS datagram the rules allow")
	}
	mustBeDropped(t, "inbound connection to the agent", enforcetest.DialHello(inbound, blockWait))

	policy.AllowSSH = true
	if err := Apply(Build(policy), target(tn)); err != nil {
		t.Fatalf("Apply with AllowSSH: %v", err)
	}
	if err := tn.Do(func() error { return enforcetest.DialHello(ssh, 5*time.Second) }); err != nil {
		t.Errorf("SSH with --allow-ssh: %v, want reachable", err)
	}
	if err := tn.Do(func() error { return enforcetest.DialHello(canary, blockWait) }); !isDropped(err) {
		t.Errorf("canary with --allow-ssh: %v, want dropped", err)
	}
}
