package policy

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchPolicy has about a hundred rules: 50 allow and 40 deny globs, half
// exact and half wildcard, plus the telemetry list and ten private ranges.
func benchPolicy(b *testing.B) *Policy {
	cfg := Default()
	cfg.Default = "deny"
	for i := range 25 {
		cfg.Allow = append(cfg.Allow, Hosts(fmt.Sprintf("api%d.allowed%d.example:443", i, i), fmt.Sprintf("*.cdn%d.example", i))...)
	}
	for i := range 20 {
		cfg.Deny = append(cfg.Deny, Hosts(fmt.Sprintf("bad%d.example", i), fmt.Sprintf("*.tracker%d.example", i))...)
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
				p.CheckAddr("host.example", addr, 443)
			}
		})
	}
}

// BenchmarkDecideRequest is a request's decision by rules narrowed to
// methods and paths (with the telemetry list and a narrowed deny rule
// checked first): the cost of method and path rules on the request path.
func BenchmarkDecideRequest(b *testing.B) {
	pc := Default()
	pc.Default = "deny"
	pc.Allow = append(pc.Allow,
		Rule{Host: "api.github.com", Methods: []string{"GET", "HEAD"}, Paths: []string{"/repos/acme/**", "/user"}},
		Rule{Host: "api.github.com", Methods: []string{"POST"}, Paths: []string{"/repos/acme/*/issues"}})
	pc.Deny = append(pc.Deny, Rule{Host: "*.github.com", Methods: []string{"DELETE"}})
	p := mustNew(b, pc)
	for _, c := range []struct{ name, method, path string }{
		{"allowed by the first rule", "GET", "/repos/acme/widgets/pulls/12/files"},
		{"allowed by the second", "POST", "/repos/acme/widgets/issues"},
		{"path refused", "GET", "/repos/other/widgets"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.DecideRequest("api.github.com", 443, c.method, c.path)
			}
		})
	}
}
