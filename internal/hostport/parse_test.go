package hostport

import (
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	ok := []struct {
		in      string
		def     int
		host    string
		port    int
		comment string
	}{
		{"example.com:443", 0, "example.com", 443, "plain"},
		{"Example.COM:80", 0, "example.com", 80, "lower-cased"},
		{"example.com.:80", 0, "example.com", 80, "trailing dot stripped"},
		{"example.com", 443, "example.com", 443, "default port"},
		{"example.com.", 80, "example.com", 80, "bare with trailing dot"},
		{"localhost:1", 0, "localhost", 1, "lowest port"},
		{"localhost:65535", 0, "localhost", 65535, "highest port"},
		{"a_b-c.d:8080", 0, "a_b-c.d", 8080, "underscore and hyphen"},
		{"127.0.0.1:3000", 0, "127.0.0.1", 3000, "IPv4"},
		{"[::1]:443", 0, "::1", 443, "bracketed IPv6"},
		{"[::1]", 80, "::1", 80, "bracketed IPv6 default port"},
		{"[FD00:EC2::254]:80", 0, "fd00:ec2::254", 80, "IPv6 canonicalised"},
		{"[::ffff:127.0.0.1]:80", 0, "::ffff:127.0.0.1", 80, "IPv4-mapped"},
		{"[0:0::1]:22", 0, "::1", 22, "IPv6 zeros compressed"},
		{"::1", 80, "::1", 80, "bare IPv6 with a default port"},
		{"host.docker.internal:11434", 0, "host.docker.internal", 11434, "seed target"},
		{"xn--bcher-kva.example:443", 0, "xn--bcher-kva.example", 443, "punycode"},
		{"00443.example:0443", 0, "00443.example", 443, "leading zeros in port"},
	}
	for _, c := range ok {
		host, port, err := Parse(c.in, c.def)
		if err != nil || host != c.host || port != c.port {
			t.Errorf("%s: Parse(%q, %d) = %q, %d, %v; want %q, %d", c.comment, c.in, c.def, host, port, err, c.host, c.port)
		}
	}

	bad := []struct {
		in   string
		def  int
		want string
	}{
		{"", 80, "empty host"},
		{":443", 0, "empty host"},
		{".:443", 0, "empty host"},
		{"example.com", 0, "missing port"},
		{"example.com:", 0, "empty port"},
		{"example.com:0", 0, "out of range"},
		{"example.com:65536", 0, "out of range"},
		{"example.com:123456", 0, "out of range"},
		{"example.com:99999999999999999999", 0, "out of range"},
		{"example.com:-1", 0, "not a number"},
		{"example.com:+80", 0, "not a number"},
		{"example.com:8o", 0, "not a number"},
		{"a:b:c", 0, "too many colons"},
		{"fe80::1:443", 0, "missing port"},
		{"::1:443", 0, "missing port"},
		{"[::1]", 0, "missing port"},
		{"[::1", 0, `missing "]"`},
		{"[::1]443", 0, "unexpected"},
		{"[::1]:", 0, "empty port"},
		{"[1.2.3.4]:80", 0, "not an IPv6 address"},
		{"[fe80::1%eth0]:80", 0, "not an IPv6 address"},
		{"[example.com]:80", 0, "not an IPv6 address"},
		{"exa mple.com:80", 0, "space or control"},
		{" example.com:80", 0, "space or control"},
		{"example.com:80\n", 0, "space or control"},
		{"exam\x00ple.com:80", 0, "space or control"},
		{"exam\x7fple.com:80", 0, "space or control"},
		{"a..b:80", 0, "empty label"},
		{".a:80", 0, "empty label"},
		{"a.b..:80", 0, "empty label"},
		{"user@example.com:80", 0, `contains '@'`},
		{"example.com/x:80", 0, `contains '/'`},
		{"*.example.com:80", 0, `contains '*'`},
		{"bücher.example:80", 0, "xn--"},
		{strings.Repeat("a", 64) + ".com:80", 0, "longer than 63"},
		{strings.Repeat("a.", 127) + "ab:80", 0, "at most 253"},
		{"example.com", 70000, "default port"},
	}
	for _, c := range bad {
		host, port, err := Parse(c.in, c.def)
		if err == nil {
			t.Errorf("Parse(%q, %d) = %q, %d; want an error containing %q", c.in, c.def, host, port, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %d) error %q does not contain %q", c.in, c.def, err, c.want)
		}
		if prefix := "hostport: " + strconv.Quote(c.in) + ": "; !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Parse(%q) error %q does not start with %q", c.in, err, prefix)
		}
	}
}

func TestJoinRoundTrips(t *testing.T) {
	for _, in := range []string{"example.com:443", "[::1]:80", "10.0.0.1:8080", "[::ffff:10.0.0.1]:1"} {
		host, port, err := Parse(in, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Join(host, port); got != in {
			t.Errorf("Join(Parse(%q)) = %q", in, got)
		}
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM.":           "example.com",
		"[::FFFF:7F00:1]":        "127.0.0.1",
		"::ffff:10.0.0.1":        "10.0.0.1",
		"fe80::1%eth0":           "fe80::1",
		"[2001:DB8::1]":          "2001:db8::1",
		"not a host":             "not a host",
		"10.0.0.1":               "10.0.0.1",
		"xn--bcher-kva.example.": "xn--bcher-kva.example",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}
