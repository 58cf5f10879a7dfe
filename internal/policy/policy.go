package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// Policy is a compiled Config. It is immutable and safe for
// concurrent use.
type Policy struct {
	report       bool
	defaultAllow bool
	allow        ruleSet
	deny         ruleSet
	telemetry    ruleSet
	connectPorts map[int]bool

	privateHosts  ruleSet
	privatePorts  []int // the ports private_allow's host entries are bound to
	privateRanges []privateRange
}

// privateRange is a private_allow range or address, bound to one port or
// (port 0) to every port.
type privateRange struct {
	namedPrefix
	port int
}

// New compiles cfg. Empty Default and Mode mean "allow" and "enforce" and a
// nil TelemetryDeny means on; lists are taken as they are, so start from
// Default() (or cfg.WithDefaults()) to get the default CONNECT port and
// private_allow. A cfg with any problem (Validate) is refused, every
// problem named.
func New(cfg Config) (*Policy, error) {
	if cfg.Default == "" {
		cfg.Default = "allow"
	}
	if cfg.Mode == "" {
		cfg.Mode = "enforce"
	}
	if probs := cfg.Validate(); len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, pr := range probs {
			msgs[i] = pr.Path + " " + pr.Msg
		}
		return nil, fmt.Errorf("policy: %s", strings.Join(msgs, "; "))
	}
	p := &Policy{connectPorts: map[int]bool{}, defaultAllow: cfg.Default == "allow", report: cfg.Mode == "report"}
	addRules(&p.allow, cfg.Allow)
	addRules(&p.deny, cfg.Deny)
	if cfg.TelemetryOn() {
		for _, h := range TelemetryHosts {
			g, _ := hostport.ParseGlob(h)
			p.telemetry.add(g)
		}
	}
	for _, port := range cfg.ConnectPorts {
		p.connectPorts[port] = true
	}
	for _, s := range cfg.PrivateAllow {
		p.addPrivate(s)
	}
	return p, nil
}

// addRules compiles rules Validate has accepted.
func addRules(r *ruleSet, rules []Rule) {
	for _, cr := range rules {
		g, _ := hostport.ParseGlob(cr.Host)
		ru := rule{glob: g, text: g.String(), methods: cr.Methods, foldPaths: cr.CaseInsensitivePaths}
		for _, pat := range cr.Paths {
			ru.paths = append(ru.paths, strings.Split(pat[1:], "/"))
		}
		if ru.narrowed() {
			ru.text += " " + strings.Join(append(slices.Clone(cr.Methods), cr.Paths...), " ")
		}
		r.addRule(ru)
	}
}

// addPrivate reads a private_allow entry Validate has accepted, the way
// CheckPrivateAllow checks it: CIDR, then IP, then IP and port, then host
// glob (with or without a port).
func (p *Policy) addPrivate(s string) {
	if strings.Contains(s, "/") {
		pfx, _ := netip.ParsePrefix(s)
		p.privateRanges = append(p.privateRanges, privateRange{named(pfx.Masked()), 0})
		return
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		p.privateRanges = append(p.privateRanges, privateRange{named(netip.PrefixFrom(ip, ip.BitLen())), 0})
		return
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		ip := ap.Addr().WithZone("").Unmap()
		p.privateRanges = append(p.privateRanges, privateRange{namedPrefix{netip.PrefixFrom(ip, ip.BitLen()), netip.AddrPortFrom(ip, ap.Port()).String()}, int(ap.Port())})
		return
	}
	g, _ := hostport.ParseGlob(s)
	p.privateHosts.add(g)
	if g.Port != 0 && !slices.Contains(p.privatePorts, g.Port) {
		p.privatePorts = append(p.privatePorts, g.Port)
	}
}

// Decide is the name-level decision, made before any DNS lookup: the deny
// list and the telemetry list first, then (for CONNECT) the port, then the
// allow list, then the default. host is the destination as the client
// named it; it is normalised here (case, trailing dot, IPv6 spelling) so no
// spelling slips past a deny rule.
//
// Decide sees the host alone, as for a CONNECT tunnel: a rule narrowed to
// methods or paths allows the tunnel (the config package makes sure tunnels
// to its host are intercepted, and each request inside then goes through
// DecideRequest), and a narrowed deny rule is left to those requests.
func (p *Policy) Decide(host string, port int, connect bool) Decision {
	return p.decide(hostport.Canonical(host), port, connect, nil)
}

// DecideRequest is Decide for one request the proxy sees whole (a forward
// or X-Target-URL request, or one inside an intercepted tunnel), where
// rules narrowed to methods and paths apply: a deny rule refuses a request
// it matches (method_denied, or path_denied when it names paths); among the
// allow rules for the host, the most specific that matches allows it, and
// when rules exist for the host but none matches, the request is refused
// (method_denied if none allows its method, else path_denied) rather than
// left to the default.
//
// method is the request's as sent, in whatever case; path is the path the
// upstream will receive, percent-encoded as on the wire (URL.EscapedPath),
// because what an upstream makes of "%2e%2e" or "%2F" is only knowable
// from the bytes it gets. Rules fail closed: a deny rule matches a method
// in any case (and HEAD when it names GET), a path splitPath cannot judge,
// and a path with or without its trailing "/"; an allow rule matches none
// of these.
func (p *Policy) DecideRequest(host string, port int, method, path string) Decision {
	return p.decide(hostport.Canonical(host), port, false, &request{method, path})
}

// request is what a narrowed rule is matched against; nil for a tunnel.
type request struct{ method, path string }

func (p *Policy) decide(host string, port int, connect bool, req *request) Decision {
	// A rule applies to req when it is not narrowed, or req matches it;
	// without a request only rules of the host alone apply to a deny, and
	// every rule for the host to an allow.
	var d Decision
	decided := false
	// The path is split once, into an array on the stack for the common
	// case, and only when a rule for the host narrows by path.
	var buf [32]string
	var path reqPath
	pathSplit := false
	splitOnce := func() reqPath {
		if !pathSplit {
			path, pathSplit = splitPath(req.path, buf[:0]), true
		}
		return path
	}
	p.deny.each(host, port, func(r *rule) bool {
		switch {
		case !r.narrowed():
			d, decided = p.refuse(ReasonDenylist, r.text), true
		case req != nil && r.methodOK(req.method, true) && (len(r.paths) == 0 || r.pathOK(splitOnce(), true)):
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
		if r.methodOK(req.method, false) {
			methodSeen = true
			if len(r.paths) == 0 || r.pathOK(splitOnce(), false) {
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

// ReportMode reports whether the policy only notes what it would refuse
// (mode: report).
func (p *Policy) ReportMode() bool { return p.report }

// NamesPrivate reports whether host is named by private_allow (as a host
// or glob, on any port): a destination the operator expects on a private
// address, such as the host's Ollama.
func (p *Policy) NamesPrivate(host string) bool {
	host = hostport.Canonical(host)
	if _, ok := p.privateHosts.match(host, 0); ok {
		return true
	}
	for _, port := range p.privatePorts {
		if _, ok := p.privateHosts.match(host, port); ok {
			return true
		}
	}
	return false
}
