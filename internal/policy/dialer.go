package policy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/slapenir/slapenir/internal/hostport"
)

// Dialer connects to destinations the address check allows. It resolves a
// name once, checks every address it got, and dials one of the addresses
// that passed, as an IP literal, so a second DNS answer can never swap in
// an address that was not checked (DNS rebinding). Use its DialContext as
// an http.Transport's and for CONNECT tunnels.
//
// The name-level Decide is the caller's job, before dialing.
type Dialer struct {
	Policy   *Policy
	Resolver *net.Resolver // nil = net.DefaultResolver
	Timeout  time.Duration // per-dial timeout; 0 = 10s
}

// RefusedError is returned by DialContext when no resolved address passed
// CheckAddr. Addr and Decision are those of the first address refused.
type RefusedError struct {
	Host     string
	Addr     netip.Addr
	Port     int
	Decision Decision
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("policy: refused to connect to %q at %s: %s (%s); name the host or address (with its port, to allow only that one) in policy.private_allow if it must be reachable",
		e.Host, netip.AddrPortFrom(e.Addr, uint16(e.Port)), e.Decision.Reason, e.Decision.Rule)
}

// DialContext resolves addr ("host:port"), checks every address, and dials
// the ones that passed in the resolver's order until one answers. network
// is "tcp", "tcp4" or "tcp6".
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	family, err := familyOf(network, addr)
	if err != nil {
		return nil, err
	}
	host, port, err := hostport.Parse(addr, 0)
	if err != nil {
		return nil, fmt.Errorf("policy: dial: %w", err)
	}
	return d.dial(ctx, network, family, host, port)
}

// Dial is DialContext for a destination already parsed (the plan of the
// request it is for): host as hostport.Parse returns it, and port.
func (d *Dialer) Dial(ctx context.Context, network, host string, port int) (net.Conn, error) {
	family, err := familyOf(network, hostport.Join(host, port))
	if err != nil {
		return nil, err
	}
	return d.dial(ctx, network, family, host, port)
}

// familyOf is the address family to resolve for network.
func familyOf(network, addr string) (string, error) {
	switch network {
	case "tcp":
		return "ip", nil
	case "tcp4":
		return "ip4", nil
	case "tcp6":
		return "ip6", nil
	}
	return "", fmt.Errorf("policy: cannot dial %q over %q: only tcp, tcp4 and tcp6 are supported", addr, network)
}

func (d *Dialer) dial(ctx context.Context, network, family, host string, port int) (net.Conn, error) {
	checked, err := d.check(ctx, family, host, port)
	if err != nil {
		return nil, err
	}

	var passed []netip.Addr
	var refused *RefusedError
	for _, c := range checked {
		if !c.Decision.Allow {
			if refused == nil {
				refused = &RefusedError{Host: host, Addr: c.Addr, Port: port, Decision: c.Decision}
			}
			continue
		}
		passed = append(passed, c.Addr)
	}
	if len(passed) == 0 {
		return nil, refused
	}

	timeout := d.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{Timeout: timeout}
	var last error
	for _, ip := range passed {
		conn, err := nd.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("policy: connecting to %q: %w", host, last)
}

// AddrCheck is one resolved address of a host and the address-level
// decision on it.
type AddrCheck struct {
	Addr     netip.Addr
	Decision Decision
}

// Check resolves host as DialContext does and returns each address with
// CheckAddr's decision on it for port, without connecting: DialContext
// dials the allowed ones, in this order, and refuses when there are none.
func (d *Dialer) Check(ctx context.Context, host string, port int) ([]AddrCheck, error) {
	return d.check(ctx, "ip", host, port)
}

func (d *Dialer) check(ctx context.Context, family, host string, port int) ([]AddrCheck, error) {
	ips, err := d.resolve(ctx, family, host)
	if err != nil {
		return nil, err
	}
	out := make([]AddrCheck, len(ips))
	for i, ip := range ips {
		out[i] = AddrCheck{Addr: ip, Decision: d.Policy.CheckAddr(host, ip, port)}
	}
	return out, nil
}

// resolve returns the addresses of host; an IP literal is its own answer
// and never goes to DNS.
func (d *Dialer) resolve(ctx context.Context, family, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if (family == "ip4" && !ip.Unmap().Is4()) || (family == "ip6" && ip.Is4()) {
			return nil, fmt.Errorf("policy: address %s does not fit network %s", ip, family)
		}
		return []netip.Addr{ip}, nil
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, family, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.Server != "" {
			// The resolver's address ("on 10.0.0.2:53") is the proxy's
			// network, not the agent's business.
			c := *dnsErr
			c.Server = ""
			err = &c
		}
		return nil, fmt.Errorf("policy: resolving %q: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("policy: resolving %q: no addresses", host)
	}
	return ips, nil
}
