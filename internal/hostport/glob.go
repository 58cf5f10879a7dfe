package hostport

import (
	"errors"
	"fmt"
	"strings"
)

// Glob is a parsed host pattern of the egress policy:
//
//	"api.openai.com"        that host, any port
//	"api.openai.com:443"    that host, port 443 only
//	"*.github.com"          every name below github.com (not github.com itself)
//	"example.com:*"         that host, any port (same as no port)
//	"*"                     every host
//	"10.0.0.7", "[::1]:80"  IP literals, matched as written (canonical form)
//
// A "*" may only be the whole host or the whole first label: partial
// wildcards such as "api-*.x.com" are rejected rather than guessed at.
type Glob struct {
	// Host is the normalised host, or for a wildcard the suffix after
	// "*." ("github.com"); "" when Any.
	Host string
	// Wildcard means Host is a suffix: the glob matches names ending in
	// "."+Host.
	Wildcard bool
	// Any means the glob matches every host.
	Any bool
	// Port is the only port matched, 0 for any port.
	Port int
}

// ParseGlob parses a host glob with an optional ":port" or ":*".
func ParseGlob(s string) (Glob, error) {
	g, err := parseGlob(s)
	if err != nil {
		return Glob{}, fmt.Errorf("hostport: glob %q: %w", s, err)
	}
	return g, nil
}

func parseGlob(s string) (Glob, error) {
	var g Glob
	rest, anyPort := strings.CutSuffix(s, ":*")
	switch {
	case rest == "*" || strings.HasPrefix(rest, "*:"):
		g.Any, rest = true, rest[1:]
	case strings.HasPrefix(rest, "*."):
		g.Wildcard, rest = true, rest[2:]
	}
	if strings.Contains(rest, "*") {
		return Glob{}, errors.New(`"*" may only be the whole host or the whole first label, as in "*.example.com"`)
	}
	if anyPort && hasExplicitPort(rest) {
		return Glob{}, errors.New("two ports given")
	}
	if g.Any {
		if rest == "" {
			return g, nil
		}
		port, err := parsePort(rest[1:])
		g.Port = port
		return g, err
	}
	// Parse needs a default port to accept a bare host; 1 stands for "none
	// given" and is told apart from an explicit ":1" by hasExplicitPort.
	host, port, err := parse(rest, 1)
	if err != nil {
		return Glob{}, err
	}
	if hasExplicitPort(rest) {
		g.Port = port
	}
	if g.Wildcard && !isName(host) {
		return Glob{}, errors.New(`"*." must be followed by a DNS name, not an IP address`)
	}
	g.Host = host
	return g, nil
}

// hasExplicitPort reports whether a host[:port] string (already known to
// parse) carries a port: "[v6]:p" or a single colon.
func hasExplicitPort(s string) bool {
	if strings.HasPrefix(s, "[") {
		return strings.Contains(s, "]:")
	}
	return strings.Count(s, ":") == 1
}

// isName reports whether a normalised host is a DNS name rather than an IP
// literal; only names have suffixes worth matching.
func isName(host string) bool {
	if strings.Contains(host, ":") {
		return false
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	return last == "" || last[0] < '0' || last[0] > '9'
}

// String writes the glob back in the canonical form ParseGlob accepts.
func (g Glob) String() string {
	var h string
	switch {
	case g.Any:
		h = "*"
	case g.Wildcard:
		h = "*." + g.Host
	case strings.Contains(g.Host, ":"):
		h = "[" + g.Host + "]"
	default:
		h = g.Host
	}
	if g.Port != 0 {
		return h + ":" + fmt.Sprint(g.Port)
	}
	return h
}

// Match reports whether a normalised host (as returned by Parse) and port
// fall under the glob.
func (g Glob) Match(host string, port int) bool {
	if g.Port != 0 && g.Port != port {
		return false
	}
	switch {
	case g.Any:
		return true
	case g.Wildcard:
		return len(host) > len(g.Host) && strings.HasSuffix(host, g.Host) && host[len(host)-len(g.Host)-1] == '.'
	default:
		return host == g.Host
	}
}
