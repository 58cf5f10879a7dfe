package enforce

import (
	"errors"
	"fmt"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Target is the network namespace to act on: NetNS is a path such as
// /var/run/netns/agent or /proc/PID/ns/net; empty means the current one.
type Target struct {
	NetNS string
}

func (t Target) String() string {
	if t.NetNS == "" {
		return "the current network namespace"
	}
	return "network namespace " + t.NetNS
}

// Apply installs rs as the table inet slapenir of the target namespace,
// replacing any previous version in the same netlink batch: the kernel applies
// the batch as one transaction, so the namespace never runs without the table
// or with two versions of it, and applying twice leaves one.
func Apply(rs Ruleset, target Target) error {
	return withConn(target, "install", func(c *nftables.Conn) {
		table := replaceTable(c)
		for _, ch := range rs.Chains {
			chain := c.AddChain(&nftables.Chain{
				Name:     ch.Name,
				Table:    table,
				Type:     nftables.ChainTypeFilter,
				Hooknum:  hookOf(ch.Hook),
				Priority: nftables.ChainPriorityFilter,
				Policy:   policyDrop(),
			})
			for _, r := range ch.Rules {
				c.AddRule(&nftables.Rule{
					Table:    table,
					Chain:    chain,
					Exprs:    r.Exprs,
					UserData: userdata.AppendString(nil, userdata.TypeComment, r.Comment),
				})
			}
		}
	})
}

// Remove deletes the table inet slapenir from the target namespace; removing
// a table that is not there is not an error, so cleanup can always call it.
func Remove(target Target) error {
	return withConn(target, "remove", func(c *nftables.Conn) {
		c.DelTable(replaceTable(c))
	})
}

// replaceTable queues "add table; delete table; add table": adding first makes
// the delete succeed when the table does not exist yet.
func replaceTable(c *nftables.Conn) *nftables.Table {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	return c.AddTable(t)
}

func hookOf(h Hook) *nftables.ChainHook {
	if h == HookInput {
		return nftables.ChainHookInput
	}
	return nftables.ChainHookOutput
}

func policyDrop() *nftables.ChainPolicy {
	p := nftables.ChainPolicyDrop
	return &p
}

// withConn queues what build adds on a netlink connection to the target's
// namespace and sends it as one batch.
func withConn(target Target, what string, build func(*nftables.Conn)) error {
	opts := []nftables.ConnOption{}
	if target.NetNS != "" {
		ns, err := os.Open(target.NetNS)
		if err != nil {
			return fmt.Errorf("enforce: open %s: %w (give a path such as /var/run/netns/NAME or /proc/PID/ns/net)", target, err)
		}
		defer ns.Close()
		opts = append(opts, nftables.WithNetNSFd(int(ns.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("enforce: open netlink to %s: %w", target, err)
	}
	build(c)
	if err := c.Flush(); err != nil {
		return explainNetlink(what, target, err)
	}
	return nil
}

// ErrNotPermitted is wrapped by errors from Apply and Remove when the kernel
// refuses the change for lack of CAP_NET_ADMIN.
var ErrNotPermitted = errors.New("not permitted to change nftables rules")

func explainNetlink(what string, target Target, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		if target.NetNS != "" {
			return fmt.Errorf("enforce: %s table inet %s in %s: %w: joining another namespace needs CAP_SYS_ADMIN and changing its rules CAP_NET_ADMIN; run it as root: %v",
				what, TableName, target, ErrNotPermitted, err)
		}
		return fmt.Errorf("enforce: %s table inet %s in %s: %w: this process lacks CAP_NET_ADMIN; run the agent container with `privileged: true` or `cap_add: [NET_ADMIN]`, or outside a container run it as root: %v",
			what, TableName, target, ErrNotPermitted, err)
	}
	return fmt.Errorf("enforce: %s table inet %s in %s: %w (is nf_tables available in this kernel?)", what, TableName, target, err)
}
