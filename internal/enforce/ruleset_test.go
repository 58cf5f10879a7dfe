package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testPolicy() Policy {
	return Policy{
		Proxy: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:3000")},
		CA:    []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:9000")},
	}
}

// TestBuildDefault compares the default ruleset with the file that documents
// it, so a change of the rules is a visible change of testdata.
func TestBuildDefault(t *testing.T) {
	got := Build(testPolicy()).String()
	golden := filepath.Join("testdata", "default.nft")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if got != string(want) {
		t.Errorf("ruleset differs from %s:\n%s", golden, got)
	}
}

func TestBuildOptions(t *testing.T) {
	p := testPolicy()
	def := Build(p).String()
	for _, absent := range []string{"dport 22", "dport 53", "icmpv6"} {
		if strings.Contains(def, absent) {
			t.Errorf("default ruleset allows %q:\n%s", absent, def)
		}
	}

	p.AllowSSH = true
	p.DNS = netip.MustParseAddr("10.0.0.53")
	got := Build(p).String()
	for _, want := range []string{
		`tcp dport 22 accept comment "SSH (--allow-ssh)"`,
		"ip daddr 10.0.0.53 udp dport 53 accept",
		"ip daddr 10.0.0.53 tcp dport 53 accept",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset with SSH and DNS lacks %q:\n%s", want, got)
		}
	}

	p.Proxy = append(p.Proxy, netip.MustParseAddrPort("[fd00::3]:3000"))
	got = Build(p).String()
	for _, want := range []string{"ip6 daddr fd00::3 tcp dport 3000 accept", "icmpv6 type nd-neighbor-solicit accept"} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset with an IPv6 proxy lacks %q:\n%s", want, got)
		}
	}
}

// TestBuildEndsInLoggedDrop checks the shape every chain must keep: accepts
// first, then the rate-limited log, then the counted drop, and a rule's text
// and expressions built together.
func TestBuildEndsInLoggedDrop(t *testing.T) {
	p := testPolicy()
	p.AllowSSH = true
	rs := Build(p)
	if len(rs.Chains) != 2 || rs.Chains[0].Hook != HookOutput || rs.Chains[1].Hook != HookInput {
		t.Fatalf("chains = %+v, want output then input", rs.Chains)
	}
	for _, c := range rs.Chains {
		n := len(c.Rules)
		if n < 4 {
			t.Fatalf("chain %s has %d rules", c.Name, n)
		}
		if !strings.HasPrefix(c.Rules[n-2].Text, "limit rate 10/second") || !strings.Contains(c.Rules[n-2].Text, `log prefix "slapenir-drop`) {
			t.Errorf("chain %s: next to last rule %q, want the rate-limited log", c.Name, c.Rules[n-2].Text)
		}
		if c.Rules[n-1].Text != "counter drop" {
			t.Errorf("chain %s: last rule %q, want counter drop", c.Name, c.Rules[n-1].Text)
		}
		for _, r := range c.Rules[:n-2] {
			if !strings.HasSuffix(r.Text, " accept") {
				t.Errorf("chain %s: rule %q before the log does not accept", c.Name, r.Text)
			}
		}
		for _, r := range c.Rules {
			if len(r.Exprs) == 0 || r.Comment == "" {
				t.Errorf("chain %s: rule %q has %d expressions and comment %q", c.Name, r.Text, len(r.Exprs), r.Comment)
			}
		}
	}
}
