package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
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
	errs = append(errs, addRules(&p.allow, "allow", cfg.Allow)...)
	errs = append(errs, addRules(&p.deny, "deny", cfg.Deny)...)
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

func addRules(r *ruleSet, list string, rules []config.Rule) []error {
	var errs []error
	for i, cr := range rules {
		g, err := hostport.ParseGlob(cr.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", list, i, err))
			continue
		}
		ru := rule{glob: g, text: g.String(), methods: cr.Methods}
		for _, pat := range cr.Paths {
			if err := config.CheckPathPattern(pat); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", list, i, err))
				continue
			}
			ru.paths = append(ru.paths, strings.Split(pat[1:], "/"))
		}
		if ru.narrowed() {
			ru.text += " " + strings.Join(append(slices.Clone(cr.Methods), cr.Paths...), " ")
		}
		r.addRule(ru)
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
//
// Decide sees the host alone, as for a CONNECT tunnel: a rule narrowed to
// methods or paths allows the tunnel (config.Validate makes sure tunnels
// to its host are intercepted, and each request inside then goes through
// DecideRequest), and a narrowed deny rule is left to those requests.
func (p *Policy) Decide(host string, port int, connect bool) Decision {
	return p.decide(normaliseHost(host), port, connect, nil)
}

// DecideRequest is Decide for one request the proxy sees whole (a forward
// or X-Target-URL request, or one inside an intercepted tunnel), where
// rules narrowed to methods and paths apply: a deny rule refuses a request
// it matches (method_denied, or path_denied when it names paths); among the
// allow rules for the host, the most specific that matches allows it, and
// when rules exist for the host but none matches, the request is refused
// (method_denied if none allows its method, else path_denied) rather than
// left to the default.
func (p *Policy) DecideRequest(host string, port int, method, path string) Decision {
	return p.decide(normaliseHost(host), port, false, &request{method, path})
}

// request is what a narrowed rule is matched against; nil for a tunnel.
type request struct{ method, path string }

func (p *Policy) decide(host string, port int, connect bool, req *request) Decision {
	// A rule applies to req when it is not narrowed, or req matches it;
	// without a request only rules of the host alone apply to a deny, and
	// every rule for the host to an allow.
	var d Decision
	decided := false
	p.deny.each(host, port, func(r *rule) bool {
		switch {
		case !r.narrowed():
			d, decided = p.refuse(ReasonDenylist, r.text), true
		case req != nil && r.methodOK(req.method) && r.pathOK(req.path):
			reason := ReasonMethodDenied
			if len(r.paths) > 0 {
				reason = ReasonPathDenied
			}
			d, decided = p.refuse(reason, r.text), true
		}
		return !decided
	})
	if decided {
		return d
	}
	if g, ok := p.telemetry.match(host, port); ok {
		return p.refuse(ReasonTelemetry, g)
	}
	if connect && !p.connectPorts[port] {
		return p.refuse(ReasonConnectPort, fmt.Sprint(port))
	}
	var first, allowed *rule
	methodSeen := false
	p.allow.each(host, port, func(r *rule) bool {
		if first == nil {
			first = r
		}
		if req == nil {
			allowed = r
			return false
		}
		if r.methodOK(req.method) {
			methodSeen = true
			if r.pathOK(req.path) {
				allowed = r
				return false
			}
		}
		return true
	})
	switch {
	case allowed != nil:
		return Decision{Allow: true, Reason: ReasonAllowlist, Rule: allowed.text}
	case first != nil && !methodSeen:
		return p.refuse(ReasonMethodDenied, first.text)
	case first != nil:
		return p.refuse(ReasonPathDenied, first.text)
	case p.defaultAllow:
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

// ReportMode reports whether the policy only notes what it would refuse
// (mode: report).
func (p *Policy) ReportMode() bool { return p.report }

// NamesPrivate reports whether host is named by private_allow (as a host
// or glob): a destination the operator expects on a private address, such
// as the host's Ollama.
func (p *Policy) NamesPrivate(host string) bool {
	_, ok := p.privateHosts.match(normaliseHost(host), 0)
	return ok
}
