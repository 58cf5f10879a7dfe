package enforcetest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Net is a network namespace ("the agent") joined to the root namespace ("the
// host") by a veth pair on a 10.203.N.0/24 and fd00:203:N::/64 of its own.
type Net struct {
	Name     string     // for `ip netns exec Name …`
	Path     string     // /var/run/netns/Name, for setns and nftables
	HostIf   string     // root side of the veth
	HostIP   netip.Addr // 10.203.N.1 on HostIf
	HostIP2  netip.Addr // 10.203.N.3 on HostIf: a second host address
	AgentIP  netip.Addr // 10.203.N.2 in the namespace
	HostIP6  netip.Addr // fd00:203:N::1 on HostIf
	AgentIP6 netip.Addr // fd00:203:N::2 in the namespace
}

var seq atomic.Int32

// RequireRoot skips the test, saying why, unless it runs as root with iproute2.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and nftables rules (CI runs these tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: needs the ip command (iproute2) to create network namespaces")
	}
}

// New creates the namespace and veth (skipping the test when not root) and
// deletes both when the test ends, failed or not.
func New(t testing.TB) *Net {
	t.Helper()
	RequireRoot(t)
	id := seq.Add(1)
	pid := os.Getpid()
	n := freeSubnet(t, (pid%200+int(id))%250)
	tn := &Net{
		Name:     fmt.Sprintf("slpn-enf-%d-%d", pid, id),
		HostIf:   fmt.Sprintf("sle%dh%d", pid%10000, id),
		HostIP:   netip.MustParseAddr(fmt.Sprintf("10.203.%d.1", n)),
		HostIP2:  netip.MustParseAddr(fmt.Sprintf("10.203.%d.3", n)),
		AgentIP:  netip.MustParseAddr(fmt.Sprintf("10.203.%d.2", n)),
		HostIP6:  netip.MustParseAddr(fmt.Sprintf("fd00:203:%x::1", n)),
		AgentIP6: netip.MustParseAddr(fmt.Sprintf("fd00:203:%x::2", n)),
	}
	tn.Path = "/var/run/netns/" + tn.Name
	agentIf := fmt.Sprintf("sle%da%d", pid%10000, id)

	run(t, "ip", "netns", "add", tn.Name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", tn.HostIf).Run() // gone already when the namespace took its peer
		if out, err := exec.Command("ip", "netns", "del", tn.Name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v\n%s", tn.Name, err, out)
		}
	})
	run(t, "ip", "link", "add", tn.HostIf, "type", "veth", "peer", "name", agentIf, "netns", tn.Name)
	run(t, "ip", "addr", "add", tn.HostIP.String()+"/24", "dev", tn.HostIf)
	run(t, "ip", "addr", "add", tn.HostIP2.String()+"/24", "dev", tn.HostIf)
	// nodad: the address is usable at once instead of after duplicate detection.
	run(t, "ip", "-6", "addr", "add", tn.HostIP6.String()+"/64", "dev", tn.HostIf, "nodad")
	run(t, "ip", "link", "set", tn.HostIf, "up")
	run(t, "ip", "-n", tn.Name, "addr", "add", tn.AgentIP.String()+"/24", "dev", agentIf)
	run(t, "ip", "-n", tn.Name, "-6", "addr", "add", tn.AgentIP6.String()+"/64", "dev", agentIf, "nodad")
	run(t, "ip", "-n", tn.Name, "link", "set", agentIf, "up")
	run(t, "ip", "-n", tn.Name, "link", "set", "lo", "up")
	return tn
}

// Do runs fn on an OS thread inside the namespace, so the sockets fn opens
// live there. The thread is never unlocked: it dies with the goroutine rather
// than carry the namespace into other code.
func (tn *Net) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(tn.Path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join %s: %w", tn.Path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// freeSubnet returns an N from start on whose 10.203.N.0/24 no interface has
// an address, so parallel test processes do not collide.
func freeSubnet(t testing.TB, start int) int {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("list interface addresses: %v", err)
	}
	for i := 0; i < 250; i++ {
		n := (start + i) % 250
		prefix := fmt.Sprintf("10.203.%d.", n)
		used := false
		for _, a := range addrs {
			used = used || strings.HasPrefix(a.String(), prefix)
		}
		if !used {
			return n
		}
	}
	t.Fatal("no free 10.203.N.0/24 subnet for the test network")
	return 0
}
