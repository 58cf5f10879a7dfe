package hostport

import (
	"strings"
	"testing"
)

func TestParseGlob(t *testing.T) {
	ok := []struct {
		in   string
		want Glob
		str  string
	}{
		{"api.openai.com", Glob{Host: "api.openai.com"}, "api.openai.com"},
		{"API.OpenAI.com.", Glob{Host: "api.openai.com"}, "api.openai.com"},
		{"api.openai.com:443", Glob{Host: "api.openai.com", Port: 443}, "api.openai.com:443"},
		{"example.com:*", Glob{Host: "example.com"}, "example.com"},
		{"*.github.com", Glob{Host: "github.com", Wildcard: true}, "*.github.com"},
		{"*.github.com:22", Glob{Host: "github.com", Wildcard: true, Port: 22}, "*.github.com:22"},
		{"*.github.com:*", Glob{Host: "github.com", Wildcard: true}, "*.github.com"},
		{"*", Glob{Any: true}, "*"},
		{"*:*", Glob{Any: true}, "*"},
		{"*:443", Glob{Any: true, Port: 443}, "*:443"},
		{"10.0.0.7", Glob{Host: "10.0.0.7"}, "10.0.0.7"},
		{"10.0.0.7:1", Glob{Host: "10.0.0.7", Port: 1}, "10.0.0.7:1"},
		{"[::1]:80", Glob{Host: "::1", Port: 80}, "[::1]:80"},
		{"[::1]", Glob{Host: "::1"}, "[::1]"},
		{"fd00::1", Glob{Host: "fd00::1"}, "[fd00::1]"},
		{"*.com", Glob{Host: "com", Wildcard: true}, "*.com"},
	}
	for _, c := range ok {
		g, err := ParseGlob(c.in)
		if err != nil || g != c.want || g.String() != c.str {
			t.Errorf("ParseGlob(%q) = %+v (%q), %v; want %+v (%q)", c.in, g, g, err, c.want, c.str)
			continue
		}
		if again, err := ParseGlob(g.String()); err != nil || again != g {
			t.Errorf("ParseGlob(%q) does not round-trip: %+v, %v", g.String(), again, err)
		}
	}

	bad := []struct{ in, want string }{
		{"", "empty host"},
		{"api-*.example.com", `"*" may only be`},
		{"*.*.example.com", `"*" may only be`},
		{"a.*.example.com", `"*" may only be`},
		{"**", `"*" may only be`},
		{"*example.com", `"*" may only be`},
		{"example.com:x", "not a number"},
		{"example.com:0", "out of range"},
		{"example.com:65536", "out of range"},
		{"example.com:443:*", "two ports"},
		{"*:x", "not a number"},
		{"*:", "empty port"},
		{"*.10.0.0.1", "not an IP address"},
		{"*.", "empty host"},
		{"exa mple.com", "space"},
		{"https://example.com", "not a number"},
		{"example.com/path", `contains '/'`},
	}
	for _, c := range bad {
		g, err := ParseGlob(c.in)
		if err == nil {
			t.Errorf("ParseGlob(%q) = %+v; want an error containing %q", c.in, g, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "hostport: glob ") {
			t.Errorf("ParseGlob(%q) error %q does not contain %q", c.in, err, c.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		glob string
		host string
		port int
		want bool
	}{
		{"api.openai.com", "api.openai.com", 443, true},
		{"api.openai.com", "api.openai.com", 8443, true},
		{"api.openai.com", "xapi.openai.com", 443, false},
		{"api.openai.com", "openai.com", 443, false},
		{"api.openai.com:443", "api.openai.com", 443, true},
		{"api.openai.com:443", "api.openai.com", 80, false},
		{"*.github.com", "api.github.com", 443, true},
		{"*.github.com", "a.b.github.com", 443, true},
		{"*.github.com", "github.com", 443, false},
		{"*.github.com", "evilgithub.com", 443, false},
		{"*.github.com", "github.com.evil.net", 443, false},
		{"*.github.com:22", "ssh.github.com", 443, false},
		{"*.github.com:22", "ssh.github.com", 22, true},
		{"*", "anything.example", 1, true},
		{"*:443", "anything.example", 443, true},
		{"*:443", "anything.example", 80, false},
		{"10.0.0.7", "10.0.0.7", 80, true},
		{"10.0.0.7", "10.0.0.70", 80, false},
		{"[::1]:80", "::1", 80, true},
	}
	for _, c := range cases {
		g, err := ParseGlob(c.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Match(c.host, c.port); got != c.want {
			t.Errorf("%q.Match(%q, %d) = %v; want %v", c.glob, c.host, c.port, got, c.want)
		}
	}
}
