package enforce

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCAAddrFromURL(t *testing.T) {
	for _, tc := range []struct {
		url, want, wantErr string
	}{
		{url: "https://ca:9000", want: "ca:9000"},
		{url: "https://ca.example", want: "ca.example:443"},
		{url: "http://10.0.0.2", want: "10.0.0.2:80"},
		{url: "https://[fd00::2]:9000", want: "[fd00::2]:9000"},
		{url: "ca:9000", wantErr: "not a URL with a host"},
		{url: "ftp://ca", wantErr: "has no port and scheme"},
		{url: "", wantErr: "not a URL with a host"},
		{url: "https://", wantErr: "not a URL with a host"},
	} {
		got, err := CAAddrFromURL(tc.url)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.url) {
				t.Errorf("CAAddrFromURL(%q) = %q, %v; want an error naming the URL and saying %q", tc.url, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CAAddrFromURL(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
}

func TestDefaultAddrsFromEnvironment(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got := DefaultProxyAddr(getenv); got != "proxy:3000" {
		t.Errorf("proxy default = %q, want proxy:3000", got)
	}
	if got, err := DefaultCAAddr(getenv); err != nil || got != "ca:9000" {
		t.Errorf("CA default = %q, %v; want ca:9000", got, err)
	}
	env["SLAPENIR_PROXY_ADDR"] = "10.1.2.3:3443"
	env["STEP_CA_URL"] = "https://step:8443"
	if got := DefaultProxyAddr(getenv); got != "10.1.2.3:3443" {
		t.Errorf("proxy from $SLAPENIR_PROXY_ADDR = %q", got)
	}
	if got, err := DefaultCAAddr(getenv); err != nil || got != "step:8443" {
		t.Errorf("CA from $STEP_CA_URL = %q, %v; want step:8443", got, err)
	}
}

// unanswered is a real resolver whose DNS server refuses at once (a closed
// loopback port), so every name fails to resolve without waiting on a
// network.
func unanswered(t *testing.T) *net.Resolver {
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.LocalAddr().String()
	ln.Close()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
}

func TestResolve(t *testing.T) {
	r := unanswered(t)
	p, err := Resolve(context.Background(), r, Spec{Proxy: "10.0.0.3:3000", CA: "[::ffff:10.0.0.2]:9000", DNS: "10.0.0.53", AllowSSH: true})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := Policy{
		Proxy:    []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:3000")},
		CA:       []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:9000")},
		DNS:      netip.MustParseAddr("10.0.0.53"),
		AllowSSH: true,
	}
	if p.Summary() != want.Summary() {
		t.Errorf("Resolve = %s\nwant      %s", p.Summary(), want.Summary())
	}
	// localhost resolves from /etc/hosts, without DNS.
	p, err = Resolve(context.Background(), r, Spec{Proxy: "localhost:3000", CA: "127.0.0.1:9000"})
	if err != nil || len(p.Proxy) == 0 || !p.Proxy[0].Addr().IsLoopback() {
		t.Errorf("Resolve(localhost) = %v, %v; want loopback", p.Proxy, err)
	}
	if p.DNS.IsValid() {
		t.Errorf("no --dns gave DNS %v, want none", p.DNS)
	}

	for _, tc := range []struct {
		spec    Spec
		wantErr []string
	}{
		{Spec{Proxy: "proxy.invalid:3000", CA: "10.0.0.2:9000"}, []string{"proxy", `"proxy.invalid"`, "does not resolve"}},
		{Spec{Proxy: "10.0.0.3:3000", CA: "ca.invalid:9000"}, []string{"CA", `"ca.invalid"`, "does not resolve"}},
		{Spec{Proxy: "10.0.0.3", CA: "10.0.0.2:9000"}, []string{"proxy", `"10.0.0.3"`, "host:port"}},
		{Spec{Proxy: "10.0.0.3:0", CA: "10.0.0.2:9000"}, []string{"proxy", "1-65535"}},
		{Spec{Proxy: "10.0.0.3:3000", CA: "10.0.0.2:https"}, []string{"CA", `"https"`}},
		{Spec{Proxy: "10.0.0.3:3000", CA: "10.0.0.2:9000", DNS: "dns.local"}, []string{"--dns", `"dns.local"`, "not an IP"}},
	} {
		_, err := Resolve(context.Background(), r, tc.spec)
		if err == nil {
			t.Errorf("Resolve(%+v) succeeded, want an error", tc.spec)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%+v) error %q does not say %q", tc.spec, err, w)
			}
		}
	}
}

// With --no-ca there is no CA to allow, and the summary says "none"
// rather than leaving a blank.
func TestSummaryWithoutCA(t *testing.T) {
	p := Policy{Proxy: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:3000")}}
	if got, want := p.Summary(), "allowed: loopback, replies, proxy 10.0.0.3:3000, CA none, DNS none; SSH blocked"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}
