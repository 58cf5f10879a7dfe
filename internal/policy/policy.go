package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
)

// Policy is a compiled config.Policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	report       bool
	defaultAllow bool
	allow        ruleSet
	deny         ruleSet
	telemetry    ruleSet
	connectPorts map[int]bool

	privateHosts  ruleSet
	privateRanges []namedPrefix
}

// New compiles cfg. Empty Default and Mode mean "allow" and "enforce" and a
// nil TelemetryDeny means on; lists are taken as they are, so start from
// config.Default().Policy to get the default CONNECT port and private_allow.
// Values config.Validate accepts never fail here; anything else is
// reported, every problem at once.
func New(cfg config.Policy) (*Policy, error) {
	p := &Policy{connectPorts: map[int]bool{}}
	var errs []error
	switch cfg.Default {
	case "", "allow":
		p.defaultAllow = true
	case "deny":
	default:
		errs = append(errs, fmt.Errorf("default %q is not \"allow\" or \"deny\"", cfg.Default))
	}
	switch cfg.Mode {
	case "", "enforce":
	case "report":
		p.report = true
	default:
		errs = append(errs, fmt.Errorf("mode %q is not \"enforce\" or \"report\"", cfg.Mode))
	}
	errs = append(errs, addGlobs(&p.allow, "allow", cfg.Allow)...)
	errs = append(errs, addGlobs(&p.deny, "deny", cfg.Deny)...)
	if cfg.TelemetryOn() {
		errs = append(errs, addGlobs(&p.telemetry, "telemetry", config.TelemetryHosts)...)
	}
	for i, port := range cfg.ConnectPorts {
		if port < 1 || port > 65535 {
			errs = append(errs, fmt.Errorf("connect_ports[%d]: port %d out of range 1-65535", i, port))
		}
		p.connectPorts[port] = true
	}
	for i, s := range cfg.PrivateAllow {
		if err := p.addPrivate(s); err != nil {
			errs = append(errs, fmt.Errorf("private_allow[%d]: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

func addGlobs(r *ruleSet, list string, globs []string) []error {
	var errs []error
	for i, s := range globs {
		g, err := hostport.ParseGlob(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", list, i, err))
			continue
		}
		r.add(g)
	}
	return errs
}

// addPrivate reads a private_allow entry the way config.CheckPrivateAllow
// checks it: CIDR, then IP, then host glob.
func (p *Policy) addPrivate(s string) error {
	if err := config.CheckPrivateAllow(s); err != nil {
		return err
	}
	if strings.Contains(s, "/") {
		pfx, _ := netip.ParsePrefix(s)
		p.privateRanges = append(p.privateRanges, named(pfx.Masked()))
		return nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		p.privateRanges = append(p.privateRanges, named(netip.PrefixFrom(ip, ip.BitLen())))
		return nil
	}
	g, _ := hostport.ParseGlob(s)
	p.privateHosts.add(g)
	return nil
}

// Decide is the name-level decision, made before any DNS lookup: the deny
// list and the telemetry list first, then (for CONNECT) the port, then the
// allow list, then the default. host is the destination as the client
// named it; it is normalised here (case, trailing dot, IPv6 spelling) so no
// spelling slips past a deny rule.
func (p *Policy) Decide(host string, port int, connect bool) Decision {
	host = normaliseHost(host)
	if g, ok := p.deny.match(host, port); ok {
		return p.refuse(ReasonDenylist, g)
	}
	if g, ok := p.telemetry.match(host, port); ok {
		return p.refuse(ReasonTelemetry, g)
	}
	if connect && !p.connectPorts[port] {
		return p.refuse(ReasonConnectPort, fmt.Sprint(port))
	}
	if g, ok := p.allow.match(host, port); ok {
		return Decision{Allow: true, Reason: ReasonAllowlist, Rule: g}
	}
	if p.defaultAllow {
		return Decision{Allow: true, Reason: ReasonDefaultAllow}
	}
	return p.refuse(ReasonDefaultDeny, "")
}

func normaliseHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if strings.IndexByte(host, ':') >= 0 {
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			return ip.WithZone("").Unmap().String()
		}
	}
	return host
}
