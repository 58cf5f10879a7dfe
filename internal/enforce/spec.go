package enforce

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
)

// Defaults of the inputs, matching the seed's compose network (services
// "proxy" and "ca").
const (
	DefaultProxy = "proxy:3000"
	DefaultCAURL = "https://ca:9000"
)

// Spec is what the user asks to allow, before names are resolved.
type Spec struct {
	Proxy    string // host:port of the SLAPENIR proxy
	CA       string // host:port of the CA (step-ca); "" for none
	DNS      string // IP address of the only resolver allowed; "" allows none
	AllowSSH bool   // allow TCP port 22 to any address (the seed allowed it)
}

// Policy is a Spec with every name resolved: what the ruleset allows.
type Policy struct {
	Proxy    []netip.AddrPort
	CA       []netip.AddrPort
	DNS      netip.Addr // the zero Addr allows no resolver
	AllowSSH bool
}

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DefaultProxyAddr is the proxy's host:port from $SLAPENIR_PROXY_ADDR, else
// DefaultProxy. getenv is os.Getenv outside tests.
func DefaultProxyAddr(getenv func(string) string) string {
	if v := getenv("SLAPENIR_PROXY_ADDR"); v != "" {
		return v
	}
	return DefaultProxy
}

// DefaultCAAddr is the CA's host:port derived from $STEP_CA_URL (default
// DefaultCAURL), the same variable the certificate bootstrap uses, so the
// rules allow exactly the CA the agent enrolls with.
func DefaultCAAddr(getenv func(string) string) (string, error) {
	raw := getenv("STEP_CA_URL")
	if raw == "" {
		raw = DefaultCAURL
	}
	return CAAddrFromURL(raw)
}

// CAAddrFromURL turns a CA URL such as https://ca:9000 into host:port, using
// the scheme's default port when the URL names none.
func CAAddrFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("enforce: CA URL %q is not a URL with a host (want e.g. https://ca:9000; set STEP_CA_URL or --ca host:port)", raw)
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return "", fmt.Errorf("enforce: CA URL %q has no port and scheme %q has no default (want https://host:port)", raw, u.Scheme)
		}
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// Resolve looks up every name of spec once, so the rules hold addresses. A name
// that does not resolve is an error naming it: rules without the proxy would
// lock the agent out of everything.
func Resolve(ctx context.Context, r Resolver, spec Spec) (Policy, error) {
	proxy, err := resolveHostPort(ctx, r, "proxy", spec.Proxy)
	if err != nil {
		return Policy{}, err
	}
	// No CA (slapenir enforce --no-ca): nothing to enroll from, so no port
	// is opened for one — an open port with no CA behind it would let the
	// agent reach whatever else listens there, unaudited.
	var ca []netip.AddrPort
	if spec.CA != "" {
		if ca, err = resolveHostPort(ctx, r, "CA", spec.CA); err != nil {
			return Policy{}, err
		}
	}
	p := Policy{Proxy: proxy, CA: ca, AllowSSH: spec.AllowSSH}
	if spec.DNS != "" {
		dns, err := netip.ParseAddr(spec.DNS)
		if err != nil {
			return Policy{}, fmt.Errorf("enforce: --dns %q is not an IP address (give the resolver's address, e.g. 10.0.0.2, or leave it empty to allow no DNS)", spec.DNS)
		}
		p.DNS = dns.Unmap()
	}
	return p, nil
}

// resolveHostPort resolves what ("proxy", "CA") at hostport to every address
// the name has, so the rules match whichever one a client picks.
func resolveHostPort(ctx context.Context, r Resolver, what, hostport string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return nil, fmt.Errorf("enforce: %s address %q is not host:port (want e.g. proxy:3000)", what, hostport)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("enforce: %s address %q has port %q, want a number 1-65535", what, hostport, portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}, nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("enforce: %s name %q does not resolve (%v); check the name and the agent's DNS, or give its IP address", what, host, err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		if !containsAddrPort(out, ap) {
			out = append(out, ap)
		}
	}
	return out, nil
}

func containsAddrPort(list []netip.AddrPort, ap netip.AddrPort) bool {
	for _, x := range list {
		if x == ap {
			return true
		}
	}
	return false
}
