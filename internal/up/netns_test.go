package up

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// create makes the namespace, the veth pair with its addresses and the hosts
// file; remove leaves none of them.
func TestNetnsCreateAndRemoveLeaveNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace and a veth pair needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	// A PID no live up can have: above the kernel's pid_max default.
	n := newNetns(4194304 + os.Getpid()%1000)
	hadEtcNetns := exists("/etc/netns")
	if err := n.create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.remove() })
	out, err := exec.Command("ip", "-n", n.Name, "-br", "addr", "show", "dev", n.AgentIf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), n.AgentIP.String()+"/30") {
		t.Errorf("agent end: %s %v", out, err)
	}
	hosts, err := os.ReadFile(n.hostsFile)
	if err != nil || !strings.Contains(string(hosts), n.HostIP.String()+" proxy ca") {
		t.Errorf("hosts file %s: %q %v", n.hostsFile, hosts, err)
	}
	// ip netns exec binds the hosts file over /etc/hosts: the agent
	// resolves "proxy" to the host end.
	out, err = exec.Command("ip", "netns", "exec", n.Name, "getent", "hosts", "proxy").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), n.HostIP.String()) {
		t.Errorf("getent hosts proxy in the namespace: %q %v", out, err)
	}

	if err := n.remove(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/run/netns/" + n.Name, "/sys/class/net/" + n.HostIf, n.hostsFile} {
		if exists(p) {
			t.Errorf("%s is left after remove", p)
		}
	}
	if !hadEtcNetns && exists("/etc/netns") {
		t.Error("/etc/netns, made by create, is left after remove")
	}
}

// An up killed with SIGKILL cannot clean up; the next up removes what it
// left, and nothing of a live up.
func TestRemoveStaleTakesOnlyDeadUpsNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace and a veth pair needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	dead := newNetns(4194304 + 1000 + os.Getpid()%1000) // above pid_max: no such process
	live := newNetns(os.Getpid())                       // this test: alive
	for _, n := range []*netns{dead, live} {
		if err := n.create(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.remove() })
	}
	cleaned, err := removeStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cleaned, 4194304+1000+os.Getpid()%1000) || slices.Contains(cleaned, os.Getpid()) {
		t.Errorf("removeStale cleaned up after %v", cleaned)
	}
	for _, p := range []string{"/run/netns/" + dead.Name, "/sys/class/net/" + dead.HostIf, dead.hostsFile} {
		if exists(p) {
			t.Errorf("%s of the dead up is left", p)
		}
	}
	if !exists("/run/netns/" + live.Name) {
		t.Error("the live up's namespace was removed")
	}
}
