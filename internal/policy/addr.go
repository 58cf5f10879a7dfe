package policy

import (
	"net/netip"

	"github.com/slapenir/slapenir/internal/hostport"
)

// metadataAddrs are the cloud instance-metadata endpoints (AWS, GCP, Azure,
// Oracle on IPv4; AWS on IPv6): reaching one hands out the host's cloud
// credentials, so they get their own reason in the audit log.
var metadataAddrs = []namedPrefix{singleAddr("169.254.169.254"), singleAddr("fd00:ec2::254")}

// blockedRanges are the destinations an agent must not reach through the
// proxy unless private_allow says so: anything that is not the public
// internet.
var blockedRanges = mustPrefixes(
	"0.0.0.0/8",      // "this network"; 0.0.0.0 reaches the local host
	"10.0.0.0/8",     // RFC 1918
	"100.64.0.0/10",  // CGNAT (RFC 6598), also Alibaba's metadata 100.100.100.200
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local, cloud metadata
	"172.16.0.0/12",  // RFC 1918
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // RFC 1918
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, and 255.255.255.255 broadcast
	"::/128",         // unspecified
	"::1/128",        // loopback
	"100::/64",       // discard-only
	"64:ff9b:1::/48", // local-use NAT64
	"fc00::/7",       // unique local (ULA)
	"fe80::/10",      // link-local
	"fec0::/10",      // deprecated site-local
	"ff00::/8",       // multicast
)

// Ranges that carry an IPv4 address inside an IPv6 one: what matters is
// where the packet ends up, so the embedded IPv4 address is judged.
var (
	nat64Range  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	translated  = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 2765)
	teredo      = netip.MustParsePrefix("2001::/32")
	v4CompatTop = netip.MustParsePrefix("::/96")
	loopback6   = netip.IPv6Loopback()
)

// namedPrefix is a range with its text, computed once so that a decision
// costs no allocation.
type namedPrefix struct {
	netip.Prefix
	text string
}

func named(p netip.Prefix) namedPrefix { return namedPrefix{p, p.String()} }

// singleAddr is the one-address range of s, named by the address alone.
func singleAddr(s string) namedPrefix {
	ip := netip.MustParseAddr(s)
	return namedPrefix{netip.PrefixFrom(ip, ip.BitLen()), s}
}

func mustPrefixes(ss ...string) []namedPrefix {
	out := make([]namedPrefix, len(ss))
	for i, s := range ss {
		out[i] = named(netip.MustParsePrefix(s))
	}
	return out
}

// classify returns the reason and the range or address that makes ip
// non-public, or "" when it is public.
func classify(ip netip.Addr) (reason, rule string) {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return ReasonPrivateAddress, "invalid address"
	}
	if ip.Is4In6() {
		return classify(ip.Unmap())
	}
	for _, m := range metadataAddrs {
		if m.Contains(ip) {
			return ReasonMetadataAddress, m.text
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Range.Contains(ip):
			return classify(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return classify(netip.AddrFrom4([4]byte(b[2:6])))
		case translated.Contains(ip):
			return classify(netip.AddrFrom4([4]byte(b[12:16])))
		case teredo.Contains(ip):
			// Teredo carries two IPv4 addresses: the server's, and the
			// client's with every bit flipped. Either may be the one the
			// packets reach.
			if reason, rule := classify(netip.AddrFrom4([4]byte(b[4:8]))); reason != "" {
				return reason, rule
			}
			return classify(netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}))
		case v4CompatTop.Contains(ip) && ip.Compare(loopback6) > 0:
			// Deprecated IPv4-compatible form ::a.b.c.d.
			return classify(netip.AddrFrom4([4]byte(b[12:16])))
		}
	}
	for _, r := range blockedRanges {
		if r.Contains(ip) {
			return ReasonPrivateAddress, r.text
		}
	}
	return "", ""
}

// CheckAddr is the address-level decision, made after DNS resolution for
// each address a host resolved to (or once for an IP literal), on the port
// the connection is for. Public addresses pass with reason public_address.
// Non-public ones are refused (private_address, or metadata_address for the
// cloud metadata endpoints) unless private_allow names the host — as the
// client named it — or a range containing ip, without a port or with this
// one. A port of 0 (not known) satisfies only entries without a port: an
// entry bound to a port never opens the others.
func (p *Policy) CheckAddr(host string, ip netip.Addr, port int) Decision {
	reason, rule := classify(ip)
	if reason == "" {
		return Decision{Allow: true, Reason: ReasonPublicAddress}
	}
	if g, ok := p.privateHosts.match(hostport.Canonical(host), port); ok {
		return Decision{Allow: true, Reason: ReasonPrivateAllow, Rule: g}
	}
	bare := ip.WithZone("")
	for _, r := range p.privateRanges {
		if (r.port == 0 || r.port == port) && (r.Contains(bare) || r.Contains(bare.Unmap())) {
			return Decision{Allow: true, Reason: ReasonPrivateAllow, Rule: r.text}
		}
	}
	return p.refuse(reason, rule)
}
