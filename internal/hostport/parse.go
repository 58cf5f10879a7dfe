package hostport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Parse splits "host:port", "[v6]:port" or a bare "host" into a normalised
// host and a port. defaultPort is used when the port is absent; 0 makes the
// port required. The host is lower-cased, loses one trailing dot, and an IP
// literal is returned in its canonical form, so that every spelling of a
// destination reaches the policy as the same string.
//
// An unbracketed IPv6 address is accepted only without a port: "fe80::1:443"
// is ambiguous, so it is read as an address, and rejected when a port is
// required.
func Parse(s string, defaultPort int) (host string, port int, err error) {
	host, port, err = parse(s, defaultPort)
	if err != nil {
		return "", 0, fmt.Errorf("hostport: %q: %w", s, err)
	}
	return host, port, nil
}

// Join is the inverse of Parse: it brackets IPv6 literals.
func Join(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func parse(s string, defaultPort int) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("empty host")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return "", 0, fmt.Errorf("contains a space or control character at byte %d", i)
		}
	}
	if s[0] == '[' {
		return parseBracketed(s, defaultPort)
	}
	switch strings.Count(s, ":") {
	case 0:
		return withDefaultPort(s, defaultPort)
	case 1:
		i := strings.IndexByte(s, ':')
		host, err := normaliseHost(s[:i])
		if err != nil {
			return "", 0, err
		}
		port, err := parsePort(s[i+1:])
		if err != nil {
			return "", 0, err
		}
		return host, port, nil
	default:
		if _, err := netip.ParseAddr(s); err != nil {
			return "", 0, errors.New("too many colons (an IPv6 address with a port must be bracketed: [::1]:443)")
		}
		if defaultPort == 0 {
			return "", 0, errors.New("missing port (an IPv6 address with a port must be bracketed: [::1]:443)")
		}
		return withDefaultPort(s, defaultPort)
	}
}

func parseBracketed(s string, defaultPort int) (string, int, error) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", 0, errors.New(`missing "]" after IPv6 address`)
	}
	addr, err := netip.ParseAddr(s[1:end])
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", 0, fmt.Errorf("%q is not an IPv6 address without zone", s[1:end])
	}
	rest := s[end+1:]
	if rest == "" {
		if defaultPort == 0 {
			return "", 0, errors.New("missing port")
		}
		return addr.String(), defaultPort, nil
	}
	if rest[0] != ':' {
		return "", 0, fmt.Errorf(`unexpected %q after "]" (want ":port")`, rest)
	}
	port, err := parsePort(rest[1:])
	if err != nil {
		return "", 0, err
	}
	return addr.String(), port, nil
}

func withDefaultPort(s string, defaultPort int) (string, int, error) {
	if defaultPort == 0 {
		return "", 0, errors.New("missing port")
	}
	if defaultPort < 0 || defaultPort > 65535 {
		return "", 0, fmt.Errorf("default port %d out of range 1-65535", defaultPort)
	}
	host, err := normaliseHost(s)
	if err != nil {
		return "", 0, err
	}
	return host, defaultPort, nil
}

// parsePort accepts 1-65535 written in decimal digits only: no sign, no
// spaces, at most five digits, so nothing can overflow or wrap around.
func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty port")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
		if i < 5 {
			n = n*10 + int(c-'0')
		}
	}
	if len(s) > 5 || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range 1-65535", s)
	}
	return n, nil
}

// normaliseHost lower-cases a DNS name or IPv4 literal, strips one trailing
// dot and checks that it is made of letters, digits, '-' and '_' in
// non-empty labels of at most 63 bytes. IDNs must arrive in their xn-- form:
// accepting raw Unicode would let two spellings of one name slip past a
// deny rule.
func normaliseHost(h string) (string, error) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", errors.New("empty host")
	}
	if addr, err := netip.ParseAddr(h); err == nil {
		if addr.Zone() != "" {
			return "", fmt.Errorf("host %q has an IPv6 zone, which is not allowed", h)
		}
		return addr.String(), nil
	}
	if len(h) > 253 {
		return "", fmt.Errorf("host is %d bytes long (at most 253)", len(h))
	}
	h = strings.ToLower(h)
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", fmt.Errorf("host %q has an empty label", h)
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 0x80:
			return "", fmt.Errorf("host %q is not ASCII (write internationalised names in their xn-- form)", h)
		default:
			return "", fmt.Errorf("host %q contains %q", h, c)
		}
		label++
		if label > 63 {
			return "", fmt.Errorf("host %q has a label longer than 63 bytes", h)
		}
	}
	if label == 0 {
		return "", fmt.Errorf("host %q has an empty label", h)
	}
	return h, nil
}

// Canonical is the one spelling of a host that rules are compared with,
// for a host that may not have come through Parse: lower case, without one
// trailing dot, and an IP literal (bracketed or not) in its canonical form,
// without a zone, an IPv4-mapped IPv6 address as the IPv4 address it maps
// — so "[::FFFF:7F00:1]" meets a rule for 127.0.0.1. It judges nothing: a
// host that is not a valid name is returned lower-cased, to match no rule
// that is.
func Canonical(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if strings.IndexByte(host, ':') >= 0 {
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			return ip.WithZone("").Unmap().String()
		}
	}
	return host
}
