package enforce

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testNet is a network namespace of our own ("the agent") joined to the root
// namespace ("the host", where proxy, CA and canaries listen) by a veth pair.
type testNet struct {
	name      string
	target    Target
	hostIP    netip.Addr // root side of the veth
	hostIP2   netip.Addr // a second root-side address, never allowed
	agentIP   netip.Addr
	hostIP6   netip.Addr
	agentIP6  netip.Addr
	blockWait time.Duration // how long a probe waits before calling a silent drop a drop
}

var netSeq atomic.Int32

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and nftables rules (CI runs these tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: needs the ip command (iproute2) to create network namespaces")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTestNet creates the namespace and veth on a 10.203.N.0/24 subnet no
// interface uses yet, and removes both when the test ends, failed or not.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireRoot(t)
	seq := netSeq.Add(1)
	n := int(os.Getpid()%200+int(seq)) % 250
	for tries := 0; subnetInUse(t, n); tries++ {
		if tries > 250 {
			t.Fatal("no free 10.203.N.0/24 subnet for the test network")
		}
		n = (n + 1) % 250
	}
	tn := &testNet{
		name:      fmt.Sprintf("slpn-enf-%d-%d", os.Getpid(), seq),
		hostIP:    netip.MustParseAddr(fmt.Sprintf("10.203.%d.1", n)),
		hostIP2:   netip.MustParseAddr(fmt.Sprintf("10.203.%d.3", n)),
		agentIP:   netip.MustParseAddr(fmt.Sprintf("10.203.%d.2", n)),
		hostIP6:   netip.MustParseAddr(fmt.Sprintf("fd00:203:%x::1", n)),
		agentIP6:  netip.MustParseAddr(fmt.Sprintf("fd00:203:%x::2", n)),
		blockWait: 400 * time.Millisecond,
	}
	tn.target = Target{NetNS: "/var/run/netns/" + tn.name}
	hostIf := fmt.Sprintf("sle%dh%d", os.Getpid()%10000, seq)
	agentIf := fmt.Sprintf("sle%da%d", os.Getpid()%10000, seq)

	run(t, "ip", "netns", "add", tn.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostIf).Run()
		if out, err := exec.Command("ip", "netns", "del", tn.name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v\n%s", tn.name, err, out)
		}
	})
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", agentIf, "netns", tn.name)
	run(t, "ip", "addr", "add", tn.hostIP.String()+"/24", "dev", hostIf)
	run(t, "ip", "addr", "add", tn.hostIP2.String()+"/24", "dev", hostIf)
	run(t, "ip", "-6", "addr", "add", tn.hostIP6.String()+"/64", "dev", hostIf, "nodad")
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "-n", tn.name, "addr", "add", tn.agentIP.String()+"/24", "dev", agentIf)
	run(t, "ip", "-n", tn.name, "-6", "addr", "add", tn.agentIP6.String()+"/64", "dev", agentIf, "nodad")
	run(t, "ip", "-n", tn.name, "link", "set", agentIf, "up")
	run(t, "ip", "-n", tn.name, "link", "set", "lo", "up")
	return tn
}

func subnetInUse(t *testing.T, n int) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("list interface addresses: %v", err)
	}
	prefix := fmt.Sprintf("10.203.%d.", n)
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), prefix) {
			return true
		}
	}
	return false
}

// in runs fn inside the agent namespace.
func (tn *testNet) in(t *testing.T, fn func() error) error {
	t.Helper()
	return inNetNS(tn.target, fn)
}

// serveHello listens on addr (port 0 picks one) in the current namespace and
// answers every connection with "hello\n", so a dialer that reads it proves
// the reply came back through the firewall.
func serveHello(t *testing.T, addr string) netip.AddrPort {
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

// dialHello connects to ap and reads the greeting.
func dialHello(ap netip.AddrPort, timeout time.Duration) error {
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

// isDropped reports whether a dial or send error is what a firewall drop
// looks like from the sender: silence until the timeout, or the kernel's
// local EPERM.
func isDropped(err error) bool {
	return err != nil && (errors.Is(err, syscall.EPERM) || isTimeout(err))
}

// mustBeDropped fails unless err is a drop; what says which probe it was.
func mustBeDropped(t *testing.T, what string, err error) {
	t.Helper()
	if !isDropped(err) {
		t.Errorf("%s: got %v, want it dropped (timeout or EPERM)", what, err)
		return
	}
	t.Logf("%s: dropped (%v)", what, err)
}
