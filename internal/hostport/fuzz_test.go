package hostport

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts is
// normalised and survives Join → Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:80", "::1", "a:b:c", "Example.COM.:8080", "[::ffff:1.2.3.4]", "x:0", "x:65536"} {
		f.Add(s, uint16(0))
		f.Add(s, uint16(443))
	}
	f.Fuzz(func(t *testing.T, s string, def uint16) {
		host, port, err := Parse(s, int(def))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "hostport: ") {
				t.Fatalf("Parse(%q) error without prefix: %v", s, err)
			}
			return
		}
		if host == "" || host != strings.ToLower(host) || strings.HasSuffix(host, ".") {
			t.Fatalf("Parse(%q) = host %q, not normalised", s, host)
		}
		if port < 1 || port > 65535 {
			t.Fatalf("Parse(%q) = port %d out of range", s, port)
		}
		h2, p2, err := Parse(Join(host, port), 0)
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("Parse(%q) = %q, %d but Parse(Join) = %q, %d, %v", s, host, port, h2, p2, err)
		}
	})
}

// FuzzParseTarget checks that ParseTarget never panics, that what it
// accepts has an http(s) scheme and an explicit port, and that parsing its
// own output gives the same URL.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"http://host.docker.internal:11434", "https://example.com/v1?x=1", "ftp://x", "http://[::1]/", "http://u:p@x/", "http://x/#f", "localhost:11434"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseTarget(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("ParseTarget(%q) accepted scheme %q", raw, u.Scheme)
		}
		if u.Port() == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
			t.Fatalf("ParseTarget(%q) = %q: missing port/host or has user info/fragment", raw, u)
		}
		again, err := ParseTarget(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("ParseTarget(%q) = %q, but re-parsing gives %v, %v", raw, u, again, err)
		}
		p, _ := JoinPath(u, "/x", "")
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("JoinPath on %q gave %q without leading slash", u, p)
		}
	})
}
