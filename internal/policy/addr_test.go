package policy

import (
	"net/netip"
	"testing"
)

func TestCheckAddrRanges(t *testing.T) {
	p := mustNew(t, Config{})
	cases := []struct {
		ip     string
		reason string
		rule   string
	}{
		{"8.8.8.8", ReasonPublicAddress, ""},
		{"1.1.1.1", ReasonPublicAddress, ""},
		{"2606:4700:4700::1111", ReasonPublicAddress, ""},
		{"0.0.0.0", ReasonPrivateAddress, "0.0.0.0/8"},
		{"10.1.2.3", ReasonPrivateAddress, "10.0.0.0/8"},
		{"100.64.0.1", ReasonPrivateAddress, "100.64.0.0/10"},
		{"100.127.255.255", ReasonPrivateAddress, "100.64.0.0/10"},
		{"100.128.0.1", ReasonPublicAddress, ""},
		{"127.0.0.1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"127.255.0.9", ReasonPrivateAddress, "127.0.0.0/8"},
		{"169.254.1.1", ReasonPrivateAddress, "169.254.0.0/16"},
		{"172.16.0.1", ReasonPrivateAddress, "172.16.0.0/12"},
		{"172.31.255.255", ReasonPrivateAddress, "172.16.0.0/12"},
		{"172.32.0.1", ReasonPublicAddress, ""},
		{"192.0.0.8", ReasonPrivateAddress, "192.0.0.0/24"},
		{"192.168.1.1", ReasonPrivateAddress, "192.168.0.0/16"},
		{"198.18.0.1", ReasonPrivateAddress, "198.18.0.0/15"},
		{"224.0.0.1", ReasonPrivateAddress, "224.0.0.0/4"},
		{"239.255.255.250", ReasonPrivateAddress, "224.0.0.0/4"},
		{"255.255.255.255", ReasonPrivateAddress, "240.0.0.0/4"},
		{"169.254.169.254", ReasonMetadataAddress, "169.254.169.254"},
		{"fd00:ec2::254", ReasonMetadataAddress, "fd00:ec2::254"},
		{"::", ReasonPrivateAddress, "::/128"},
		{"::1", ReasonPrivateAddress, "::1/128"},
		{"fc00::1", ReasonPrivateAddress, "fc00::/7"},
		{"fd12:3456::1", ReasonPrivateAddress, "fc00::/7"},
		{"fe80::1", ReasonPrivateAddress, "fe80::/10"},
		{"fe80::1%eth0", ReasonPrivateAddress, "fe80::/10"},
		{"fec0::1", ReasonPrivateAddress, "fec0::/10"},
		{"ff02::1", ReasonPrivateAddress, "ff00::/8"},
		{"100::1", ReasonPrivateAddress, "100::/64"},
		// IPv4 inside IPv6: judged by where the packet ends up.
		{"::ffff:127.0.0.1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"::ffff:10.0.0.1", ReasonPrivateAddress, "10.0.0.0/8"},
		{"::ffff:169.254.169.254", ReasonMetadataAddress, "169.254.169.254"},
		{"::ffff:8.8.8.8", ReasonPublicAddress, ""},
		{"::127.0.0.1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"::169.254.169.254", ReasonMetadataAddress, "169.254.169.254"},
		{"::8.8.8.8", ReasonPublicAddress, ""},
		{"64:ff9b::a9fe:a9fe", ReasonMetadataAddress, "169.254.169.254"},
		{"64:ff9b::7f00:1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"64:ff9b::808:808", ReasonPublicAddress, ""},
		{"64:ff9b:1::1", ReasonPrivateAddress, "64:ff9b:1::/48"},
		{"2002:7f00:1::1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"2002:a9fe:a9fe::1", ReasonMetadataAddress, "169.254.169.254"},
		{"2002:808:808::1", ReasonPublicAddress, ""},
		// IPv4-translated (SIIT): the last 32 bits are the destination.
		{"::ffff:0:127.0.0.1", ReasonPrivateAddress, "127.0.0.0/8"},
		{"::ffff:0:a9fe:a9fe", ReasonMetadataAddress, "169.254.169.254"},
		{"::ffff:0:808:808", ReasonPublicAddress, ""},
		// Teredo: server IPv4 in bits 32–63, client IPv4 inverted in the
		// last 32; either decides.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", ReasonPrivateAddress, "127.0.0.0/8"},
		{"2001:0:4136:e378::5601:5601", ReasonMetadataAddress, "169.254.169.254"},
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", ReasonPrivateAddress, "10.0.0.0/8"},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ReasonPublicAddress, ""},
	}
	for _, c := range cases {
		d := p.CheckAddr("example.com", netip.MustParseAddr(c.ip), 443)
		wantAllow := c.reason == ReasonPublicAddress
		if d.Allow != wantAllow || d.Report || d.Reason != c.reason || d.Rule != c.rule {
			t.Errorf("CheckAddr(%s) = %+v, want allow=%v reason %s rule %q", c.ip, d, wantAllow, c.reason, c.rule)
		}
	}
	if d := p.CheckAddr("example.com", netip.Addr{}, 443); d.Allow {
		t.Errorf("CheckAddr(invalid) = %+v, want a refusal", d)
	}
}

func TestCheckAddrPrivateAllow(t *testing.T) {
	p := mustNew(t, Config{PrivateAllow: []string{
		"host.docker.internal", "*.corp.internal", "172.17.0.0/16", "192.168.1.5", "fd00::/8", "169.254.169.254",
	}})
	cases := []struct {
		host, ip string
		allow    bool
		rule     string
	}{
		{"host.docker.internal", "172.17.0.1", true, "host.docker.internal"},
		{"HOST.docker.internal.", "10.0.0.1", true, "host.docker.internal"},
		{"db.corp.internal", "10.9.9.9", true, "*.corp.internal"},
		{"corp.internal", "10.9.9.9", false, "10.0.0.0/8"},
		{"other.example", "172.17.3.4", true, "172.17.0.0/16"},
		{"other.example", "::ffff:172.17.3.4", true, "172.17.0.0/16"},
		{"other.example", "172.18.0.1", false, "172.16.0.0/12"},
		{"other.example", "192.168.1.5", true, "192.168.1.5/32"},
		{"other.example", "192.168.1.6", false, "192.168.0.0/16"},
		{"other.example", "fd12::1", true, "fd00::/8"},
		{"other.example", "169.254.169.254", true, "169.254.169.254/32"},
		{"other.example", "127.0.0.1", false, "127.0.0.0/8"},
		{"other.example", "fd00:ec2::254", true, "fd00::/8"},
	}
	for _, c := range cases {
		d := p.CheckAddr(c.host, netip.MustParseAddr(c.ip), 443)
		if d.Allow != c.allow || d.Rule != c.rule || (c.allow && d.Reason != ReasonPrivateAllow) {
			t.Errorf("CheckAddr(%q, %s) = %+v, want allow=%v rule %q", c.host, c.ip, d, c.allow, c.rule)
		}
	}
}

func TestCheckAddrReportMode(t *testing.T) {
	p := mustNew(t, Config{Mode: "report"})
	d := p.CheckAddr("metadata.google.internal", netip.MustParseAddr("169.254.169.254"), 443)
	if want := (Decision{true, true, ReasonMetadataAddress, "169.254.169.254"}); d != want {
		t.Errorf("report mode CheckAddr = %+v, want %+v", d, want)
	}
	if d := p.CheckAddr("x", netip.MustParseAddr("8.8.8.8"), 443); d.Report {
		t.Errorf("report mode marks a public address as report: %+v", d)
	}
}

// TestCheckAddrAllocatesNothing: every dial checks its address (namedPrefix
// keeps each range's text, so a refusal names it without formatting).
func TestCheckAddrAllocatesNothing(t *testing.T) {
	p := mustNew(t, Config{PrivateAllow: []string{"host.docker.internal", "172.17.0.0/16"}})
	public, private, allowed, meta := netip.MustParseAddr("140.82.121.6"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("172.17.0.5"), netip.MustParseAddr("169.254.169.254")
	if n := testing.AllocsPerRun(100, func() {
		p.CheckAddr("api.github.com", public, 443)
		p.CheckAddr("internal.example", private, 443)
		p.CheckAddr("db.example", allowed, 443)
		p.CheckAddr("host.docker.internal", private, 443)
		p.CheckAddr("metadata.example", meta, 443)
	}); n != 0 {
		t.Fatalf("an address check allocates %v times", n)
	}
}
