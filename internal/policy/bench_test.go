package policy

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
)

// benchPolicy has about a hundred rules: 50 allow and 40 deny globs, half
// exact and half wildcard, plus the telemetry list and ten private ranges.
func benchPolicy(b *testing.B) *Policy {
	cfg := config.Default().Policy
	cfg.Default = "deny"
	for i := range 25 {
		cfg.Allow = append(cfg.Allow, config.Hosts(fmt.Sprintf("api%d.allowed%d.example:443", i, i), fmt.Sprintf("*.cdn%d.example", i))...)
	}
	for i := range 20 {
		cfg.Deny = append(cfg.Deny, config.Hosts(fmt.Sprintf("bad%d.example", i), fmt.Sprintf("*.tracker%d.example", i))...)
	}
	for i := range 10 {
		cfg.PrivateAllow = append(cfg.PrivateAllow, fmt.Sprintf("10.%d.0.0/16", i))
	}
	return mustNew(b, cfg)
}

func BenchmarkDecide(b *testing.B) {
	p := benchPolicy(b)
	hosts := []struct {
		host string
		port int
	}{
		{"api24.allowed24.example", 443}, // exact allow, checked after every deny list
		{"a.b.c.cdn17.example", 443},     // deep wildcard allow
		{"x.tracker3.example", 443},      // wildcard deny
		{"o1.ingest.sentry.io", 443},     // telemetry
		{"unknown.example.org", 443},     // no rule: default deny
	}
	for _, h := range hosts {
		b.Run(h.host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(h.host, h.port, true)
			}
		})
	}
}

func BenchmarkCheckAddr(b *testing.B) {
	p := benchPolicy(b)
	for _, ip := range []string{"93.184.216.34", "2606:4700::1111", "10.9.1.1", "169.254.169.254"} {
		addr := netip.MustParseAddr(ip)
		b.Run(ip, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.CheckAddr("host.example", addr)
			}
		})
	}
}
