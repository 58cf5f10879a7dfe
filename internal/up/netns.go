package up

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// netns is the agent's network namespace and the veth pair joining it to the
// host. Everything it creates is named after up's PID, so two ups never
// collide and teardown removes exactly what this one made.
type netns struct {
	Name      string     // ip netns name: slapenir-PID
	HostIf    string     // host end of the veth pair
	AgentIf   string     // agent end, inside the namespace
	HostIP    netip.Addr // where the proxy (and the CA forwarder) listen
	AgentIP   netip.Addr
	hostsFile string // /etc/netns/NAME/hosts, bound over /etc/hosts by ip netns exec
	// madeEtcNetns: /etc/netns did not exist before, so removing this
	// namespace's hosts file must not leave it behind.
	madeEtcNetns bool
}

func newNetns(pid int) *netns {
	// 10.213.X.0/30 per up: X from the PID keeps concurrent ups apart.
	x := byte(pid % 250)
	return &netns{
		Name:      fmt.Sprintf("slapenir-%d", pid),
		HostIf:    fmt.Sprintf("slp%dh", pid),
		AgentIf:   fmt.Sprintf("slp%da", pid),
		HostIP:    netip.AddrFrom4([4]byte{10, 213, x, 1}),
		AgentIP:   netip.AddrFrom4([4]byte{10, 213, x, 2}),
		hostsFile: filepath.Join("/etc/netns", fmt.Sprintf("slapenir-%d", pid), "hosts"),
	}
}

// create makes the namespace, the veth pair, their addresses and the hosts
// file that names the proxy and the CA inside. On failure it removes what it
// made.
func (n *netns) create() (err error) {
	defer func() {
		if err != nil {
			n.remove()
		}
	}()
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.HostIf, "type", "veth", "peer", "name", n.AgentIf, "netns", n.Name},
		{"addr", "add", n.HostIP.String() + "/30", "dev", n.HostIf},
		{"link", "set", n.HostIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "addr", "add", n.AgentIP.String() + "/30", "dev", n.AgentIf},
		{"-n", n.Name, "link", "set", n.AgentIf, "up"},
		// A default route makes every address routable, so that only the
		// nftables rules stand between the agent and the world: what
		// enforce --check and the tests prove.
		{"-n", n.Name, "route", "add", "default", "via", n.HostIP.String()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	n.madeEtcNetns = !exists("/etc/netns")
	if err := os.MkdirAll(filepath.Dir(n.hostsFile), 0o755); err != nil {
		return fmt.Errorf("up: cannot create %s: %w", filepath.Dir(n.hostsFile), err)
	}
	hosts := fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s proxy ca host.docker.internal\n", n.HostIP)
	if err := os.WriteFile(n.hostsFile, []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("up: cannot write %s: %w", n.hostsFile, err)
	}
	// No resolver: the agent has no DNS (enforce allows none), and a copy
	// of the host's resolv.conf would make every lookup the hosts file
	// cannot answer wait for timeouts. Without a nameserver line the C
	// library asks 127.0.0.1, which refuses at once.
	resolv := filepath.Join(filepath.Dir(n.hostsFile), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# slapenir up: the agent has no DNS; the names it needs are in /etc/hosts\n"), 0o644); err != nil {
		return fmt.Errorf("up: cannot write %s: %w", resolv, err)
	}
	return nil
}

// remove deletes the namespace (which takes its end of the veth pair, the
// other end and its nftables table with it), the host end if it survived,
// and the hosts file. It reports what it could not remove.
func (n *netns) remove() error {
	var errs []error
	if exists("/run/netns/" + n.Name) {
		errs = append(errs, ip("netns", "del", n.Name))
	}
	// The kernel takes the host end of the pair away shortly after the
	// namespace; delete it only if it outlives that.
	hostEnd := "/sys/class/net/" + n.HostIf
	for deadline := time.Now().Add(3 * time.Second); exists(hostEnd) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if exists(hostEnd) {
		errs = append(errs, ip("link", "del", n.HostIf))
	}
	if err := os.RemoveAll(filepath.Dir(n.hostsFile)); err != nil {
		errs = append(errs, err)
	}
	if n.madeEtcNetns {
		// Only if empty: another tool's namespaces may have appeared there.
		_ = os.Remove("/etc/netns")
	}
	return errors.Join(errs...)
}

// exec wraps argv so that it runs inside the namespace as PID 1 of a new
// PID namespace with its own /proc.
func (n *netns) exec(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Name,
		"unshare", "--pid", "--fork", "--kill-child", "--mount-proc"}, argv...)
}

func ip(args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("up: ip %s: %v: %s (up needs root and iproute2 to create the agent's network namespace; --unconfined skips it)",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// removeStale deletes what an up that was killed (SIGKILL, a crash) left
// behind: namespaces named slapenir-PID whose PID no longer runs, with their
// veth pairs and hosts files. It returns the PIDs it cleaned up after.
func removeStale() ([]int, error) {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var cleaned []int
	var errs []error
	for _, ent := range ents {
		pidText, ok := strings.CutPrefix(ent.Name(), "slapenir-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || exists(fmt.Sprintf("/proc/%d", pid)) {
			continue
		}
		n := newNetns(pid)
		n.madeEtcNetns = true // remove /etc/netns too if this leaves it empty
		if err := n.remove(); err != nil {
			errs = append(errs, err)
			continue
		}
		cleaned = append(cleaned, pid)
	}
	return cleaned, errors.Join(errs...)
}
