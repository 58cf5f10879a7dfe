package enforce

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"

	"github.com/slapenir/slapenir/internal/enforce/enforcetest"
)

// installed lists, over netlink, what the target namespace holds: every table
// (of any family) and, for ours, each chain's rule comments.
func installed(t *testing.T, target Target) (tables []string, chains map[string][]string) {
	t.Helper()
	ns, err := os.Open(target.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.ListTables()
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	chains = map[string][]string{}
	for _, tb := range all {
		tables = append(tables, tb.Name)
	}
	cs, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	for _, ch := range cs {
		if ch.Table.Name != TableName {
			continue
		}
		if ch.Policy == nil || *ch.Policy != nftables.ChainPolicyDrop {
			t.Errorf("chain %s: policy %v, want drop", ch.Name, ch.Policy)
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatalf("list rules of %s: %v", ch.Name, err)
		}
		comments := []string{}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			comments = append(comments, s)
		}
		chains[ch.Name] = comments
	}
	return tables, chains
}

func comments(c Chain) []string {
	out := []string{}
	for _, r := range c.Rules {
		out = append(out, r.Comment)
	}
	return out
}

// TestApplyIsIdempotent applies twice, then a changed policy, and lists the
// kernel's state over netlink each time: always exactly one table with one
// output and one input chain holding the last ruleset.
func TestApplyIsIdempotent(t *testing.T) {
	tn := enforcetest.New(t)
	p := Policy{
		Proxy: []netip.AddrPort{netip.AddrPortFrom(tn.HostIP, 3000)},
		CA:    []netip.AddrPort{netip.AddrPortFrom(tn.HostIP, 9000)},
	}
	for i, allowSSH := range []bool{false, false, true} {
		p.AllowSSH = allowSSH
		rs := Build(p)
		if err := Apply(rs, target(tn)); err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
		tables, chains := installed(t, target(tn))
		if strings.Join(tables, ",") != TableName {
			t.Errorf("after Apply #%d: tables %v, want only %s", i+1, tables, TableName)
		}
		if len(chains) != 2 {
			t.Errorf("after Apply #%d: chains %v, want output and input", i+1, chains)
		}
		for _, c := range rs.Chains {
			if got, want := strings.Join(chains[c.Name], "|"), strings.Join(comments(c), "|"); got != want {
				t.Errorf("after Apply #%d: chain %s rules\n got %s\nwant %s", i+1, c.Name, got, want)
			}
		}
	}
}

// TestCheckAndRemove: Check passes with the rules and fails, naming the
// canary, without them; Remove takes the table away (twice without error).
func TestCheckAndRemove(t *testing.T) {
	tn := enforcetest.New(t)
	proxy := enforcetest.ServeHello(t, net.JoinHostPort(tn.HostIP.String(), "0"))
	canary := enforcetest.ServeHello(t, net.JoinHostPort(tn.HostIP.String(), "0"))
	probe := Probe{Proxy: []netip.AddrPort{proxy}, Canary: canary, Timeout: blockWait}
	ctx := context.Background()

	err := Check(ctx, probe, target(tn))
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "canary half") {
		t.Fatalf("Check without rules = %v, want the canary half to fail", err)
	}
	if err := Apply(Build(Policy{Proxy: []netip.AddrPort{proxy}, CA: []netip.AddrPort{proxy}}), target(tn)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := Check(ctx, probe, target(tn)); err != nil {
		t.Fatalf("Check with rules = %v, want nil", err)
	}
	// The default canary (the proxy's host, port 9) also proves it.
	def, _ := DefaultCanary(Policy{Proxy: []netip.AddrPort{proxy}})
	if err := Check(ctx, Probe{Proxy: probe.Proxy, Canary: def, Timeout: blockWait}, target(tn)); err != nil {
		t.Errorf("Check with the default canary = %v, want nil", err)
	}
	down := Probe{Proxy: []netip.AddrPort{netip.AddrPortFrom(tn.HostIP, 1)}, Canary: canary, Timeout: blockWait}
	if err := Check(ctx, down, target(tn)); !errors.Is(err, ErrCheckFailed) || !strings.Contains(err.Error(), "proxy half") {
		t.Errorf("Check with an unreachable proxy = %v, want the proxy half to fail", err)
	}

	for i := 0; i < 2; i++ {
		if err := Remove(target(tn)); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if tables, _ := installed(t, target(tn)); len(tables) != 0 {
		t.Errorf("after Remove: tables %v, want none", tables)
	}
	if err := tn.Do(func() error { return enforcetest.DialHello(canary, 5*time.Second) }); err != nil {
		t.Errorf("after Remove the canary is still blocked: %v", err)
	}
}

// TestEnforceAllowsAnIPv6Proxy reaches a proxy over IPv6 with nothing in the
// neighbour cache, so neighbour discovery must pass the rules too.
func TestEnforceAllowsAnIPv6Proxy(t *testing.T) {
	tn := enforcetest.New(t)
	proxy := enforcetest.ServeHello(t, net.JoinHostPort(tn.HostIP6.String(), "0"))
	other := enforcetest.ServeHello(t, net.JoinHostPort(tn.HostIP6.String(), "0"))
	if err := Apply(Build(Policy{Proxy: []netip.AddrPort{proxy}, CA: []netip.AddrPort{proxy}}), target(tn)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := tn.Do(func() error { return enforcetest.DialHello(proxy, 5*time.Second) }); err != nil {
		t.Errorf("IPv6 proxy %s: %v, want reachable", proxy, err)
	}
	mustBeDropped(t, "other IPv6 port", tn.Do(func() error { return enforcetest.DialHello(other, blockWait) }))
}

// TestRunDryRunChangesNothing prints the ruleset for a namespace and checks
// that the namespace still has no table.
func TestRunDryRunChangesNothing(t *testing.T) {
	tn := enforcetest.New(t)
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Mode:   ModeDryRun,
		Spec:   Spec{Proxy: "10.0.0.3:3000", CA: "10.0.0.2:9000", DNS: "10.0.0.53"},
		Target: target(tn),
	}, &out)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{"table inet slapenir {", "ip daddr 10.0.0.3 tcp dport 3000 accept", "udp dport 53", "policy drop"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	if tables, _ := installed(t, target(tn)); len(tables) != 0 {
		t.Errorf("dry run installed tables %v", tables)
	}
}

// The test binary re-executes itself as this helper inside the test's
// namespace, as root without CAP_NET_ADMIN: a container that is not
// privileged.
const helperEnv = "SLAPENIR_ENFORCE_TEST_APPLY_UNPRIVILEGED"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		err := Apply(Build(testPolicy()), Target{})
		if err != nil {
			os.Stderr.WriteString(err.Error())
		}
		if errors.Is(err, ErrNotPermitted) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestApplyWithoutCapNetAdmin runs Apply as root without CAP_NET_ADMIN in the
// namespace and wants the error that says how to grant it.
func TestApplyWithoutCapNetAdmin(t *testing.T) {
	tn := enforcetest.New(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("skipping: needs setpriv (util-linux) to drop CAP_NET_ADMIN")
	}
	cmd := exec.Command("ip", "netns", "exec", tn.Name,
		"setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", "--",
		os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("helper without CAP_NET_ADMIN: %v, stderr %q; want exit 3 (ErrNotPermitted)", err, stderr.String())
	}
	t.Logf("error without CAP_NET_ADMIN: %s", stderr.String())
	for _, want := range []string{"CAP_NET_ADMIN", "privileged: true"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("error %q does not say %q", stderr.String(), want)
		}
	}
	if tables, _ := installed(t, target(tn)); len(tables) != 0 {
		t.Errorf("a refused Apply left tables %v", tables)
	}
}

// TestDryRunMatchesTheKernel installs a ruleset and has nft (when installed;
// enforce itself never needs it) decode what the kernel holds: it must read
// exactly like the dry run, so --dry-run shows the truth.
func TestDryRunMatchesTheKernel(t *testing.T) {
	tn := enforcetest.New(t)
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("skipping: needs the nft binary (Debian package nftables) to decode the installed rules")
	}
	rs := Build(Policy{
		Proxy:    []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:3000"), netip.MustParseAddrPort("[fd00::3]:3000")},
		CA:       []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:9000")},
		DNS:      netip.MustParseAddr("fd00::53"),
		AllowSSH: true,
	})
	if err := Apply(rs, target(tn)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	out, err := exec.Command("ip", "netns", "exec", tn.Name, nft, "list", "table", "inet", TableName).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	got := regexp.MustCompile(`counter packets \d+ bytes \d+ `).ReplaceAllString(string(out), "counter ")
	if got != rs.String() {
		t.Errorf("the kernel holds\n%s\nthe dry run says\n%s", got, rs.String())
	}
}

// TestApplyLeavesOtherTablesAlone: Docker's and the host's rules live in other
// tables of the same namespace; Apply and Remove must not touch them.
func TestApplyLeavesOtherTablesAlone(t *testing.T) {
	tn := enforcetest.New(t)
	ns, err := os.Open(tn.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	other := c.AddTable(&nftables.Table{Name: "docker-like", Family: nftables.TableFamilyIPv4})
	c.AddChain(&nftables.Chain{Name: "nat-output", Table: other, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	if err := c.Flush(); err != nil {
		t.Fatalf("add the other table: %v", err)
	}
	for _, step := range []func() error{
		func() error { return Apply(Build(testPolicy()), target(tn)) },
		func() error { return Apply(Build(testPolicy()), target(tn)) },
		func() error { return Remove(target(tn)) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		tables, _ := installed(t, target(tn))
		if !strings.Contains(strings.Join(tables, ","), "docker-like") {
			t.Fatalf("tables %v: the other table is gone", tables)
		}
	}
	if chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4); err != nil || len(chains) != 1 || chains[0].Name != "nat-output" {
		t.Errorf("the other table's chains after Apply and Remove: %v, %v; want nat-output", chains, err)
	}
}
