package enforce

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the one table enforce owns, in the inet family so that one
// ruleset covers IPv4 and IPv6.
const TableName = "slapenir"

// Log prefixes of dropped packets; both start with "slapenir-drop" so one grep
// finds them.
const (
	LogPrefixOut = "slapenir-drop: "
	LogPrefixIn  = "slapenir-drop-in: "
)

// Rate of drop log lines per chain: enough to debug, too few to flood dmesg.
const (
	logRate  = 10
	logBurst = 20
)

// Hook is where a chain sees packets.
type Hook string

// The two chains' hooks.
const (
	HookOutput Hook = "output" // packets the namespace sends
	HookInput  Hook = "input"  // packets addressed to the namespace
)

// Ruleset is the whole content of the table: chains with policy drop and the
// rules that accept what is allowed.
type Ruleset struct {
	Chains []Chain
}

// Chain is one base chain of the table; its policy is always drop.
type Chain struct {
	Name  string
	Hook  Hook
	Rules []Rule
}

// Rule is one rule: Text is its nft syntax, Comment why it is there, Exprs
// what the kernel runs.
type Rule struct {
	Text    string
	Comment string
	Exprs   []expr.Any
}

func rule(comment string, parts ...match) Rule {
	r := Rule{Comment: comment}
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		texts = append(texts, p.text)
		r.Exprs = append(r.Exprs, p.exprs...)
	}
	r.Text = strings.Join(texts, " ")
	return r
}

// Build turns a Policy into the ruleset: the output chain allows loopback,
// replies, the proxy, the CA, DNS to the one resolver and (if asked) SSH; the
// input chain allows loopback and replies only, because a connection opened
// from outside would let data leave through its replies. Everything else is
// logged (rate-limited) and dropped.
func Build(p Policy) Ruleset {
	out := []Rule{
		rule("loopback", oifname("lo"), accept()),
		rule("replies to allowed connections", ctStateEstablishedRelated(), accept()),
	}
	for _, ap := range p.Proxy {
		out = append(out, rule("proxy", daddr(ap.Addr()), dport(unix.IPPROTO_TCP, ap.Port()), accept()))
	}
	for _, ap := range p.CA {
		out = append(out, rule("CA", daddr(ap.Addr()), dport(unix.IPPROTO_TCP, ap.Port()), accept()))
	}
	if p.DNS.IsValid() {
		out = append(out,
			rule("DNS resolver", daddr(p.DNS), dport(unix.IPPROTO_UDP, 53), accept()),
			rule("DNS resolver", daddr(p.DNS), dport(unix.IPPROTO_TCP, 53), accept()))
	}
	if p.AllowSSH {
		out = append(out, rule("SSH (--allow-ssh)", dport(unix.IPPROTO_TCP, 22), accept()))
	}
	in := []Rule{
		rule("loopback", iifname("lo"), accept()),
		rule("replies to allowed connections", ctStateEstablishedRelated(), accept()),
	}
	if p.anyIPv6() {
		// An IPv6 neighbour is found with ICMPv6 neighbour discovery, which
		// conntrack does not track as part of the connection.
		for _, nd := range []struct {
			typ  byte
			name string
		}{{135, "nd-neighbor-solicit"}, {136, "nd-neighbor-advert"}} {
			out = append(out, rule("IPv6 neighbour discovery", icmpv6Type(nd.typ, nd.name), accept()))
			in = append(in, rule("IPv6 neighbour discovery", icmpv6Type(nd.typ, nd.name), accept()))
		}
	}
	out = append(out,
		rule("log what is refused", logLimited(LogPrefixOut, logRate, logBurst)),
		rule("refuse everything else", countedDrop()))
	in = append(in,
		rule("log what is refused", logLimited(LogPrefixIn, logRate, logBurst)),
		rule("refuse everything else", countedDrop()))
	return Ruleset{Chains: []Chain{
		{Name: "output", Hook: HookOutput, Rules: out},
		{Name: "input", Hook: HookInput, Rules: in},
	}}
}

func (p Policy) anyIPv6() bool {
	addrs := []netip.Addr{p.DNS}
	for _, ap := range append(append([]netip.AddrPort{}, p.Proxy...), p.CA...) {
		addrs = append(addrs, ap.Addr())
	}
	for _, a := range addrs {
		if a.Is6() {
			return true
		}
	}
	return false
}

// String renders the ruleset in nft's syntax, as `nft -f` would accept it and
// `nft list table inet slapenir` would show it.
func (rs Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", TableName)
	for i, c := range rs.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		fmt.Fprintf(&b, "\t\ttype filter hook %s priority filter; policy drop;\n", c.Hook)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s comment %q\n", r.Text, r.Comment)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
