package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// RuleSet is one configuration compiled (see compile): the roles with
// their policies, dialers, grants and DLP, the credentials and the
// interception rule. The proxy plans every request by the live one (plan);
// Explain says what it would do with a request by the same plan, without
// sending anything. slapenir policy explain builds one from a
// configuration; the Server serves its own at /explain.
type RuleSet struct {
	// roles are the configured roles in matching order; def is the role
	// of identities none of them selects.
	roles []*role
	def   *role
	creds []secrets.Credential
	// canIntercept is false for a Server without interception options.
	canIntercept bool
	intercept    []hostport.Glob // intercept.hosts, besides the credentials' hosts
	allowed      []string        // tls.allowed_identities
}

// NewRuleSet compiles cfg with the credentials creds (from the vault, or
// secrets.Config.Describe when the values are not at hand), as slapenir
// proxy would decide by it: with interception (it always has a CA).
func NewRuleSet(cfg *config.Config, creds []secrets.Credential) (*RuleSet, error) {
	return compile(cfg, creds, nil, true, nil)
}

// Explanation is what the proxy would do with one request.
type Explanation struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Way is how an agent's tools send it: "forward" for http URLs,
	// "connect" (a CONNECT tunnel) for https.
	Way      string `json:"way"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Identity string `json:"identity,omitempty"`
	// Role is the role whose policy decides: the first of roles whose
	// identities match, else default_role ("default" is the top-level
	// policy).
	Role     string `json:"role"`
	Decision string `json:"decision"` // allow, deny or report
	Reason   string `json:"reason"`
	Rule     string `json:"rule,omitempty"`
	// Addresses are the host's addresses and the decision on each; empty
	// when the name was refused or not looked up.
	Addresses []ExplainedAddress `json:"addresses,omitempty"`
	Lookup    string             `json:"lookup_error,omitempty"`
	// NotLookedUp says that the host's name was not resolved, so its
	// addresses are checked only when a request is made.
	NotLookedUp string `json:"addresses_not_checked,omitempty"`
	// Intercepted says whether a CONNECT tunnel would be terminated
	// (and its requests decided and injected one by one).
	Intercepted bool `json:"intercepted"`
	// DLP is the role's outbound scanning of this request: off, report,
	// enforce, or exempt (the host is in its dlp.exempt).
	DLP         string                `json:"dlp"`
	Credentials []ExplainedCredential `json:"credentials"`
}

// ExplainedAddress is one resolved address and the decision on it.
type ExplainedAddress struct {
	Address  string `json:"address"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Rule     string `json:"rule,omitempty"`
}

// ExplainedCredential is one configured credential and what happens to its
// placeholder in this request.
type ExplainedCredential struct {
	Name        string `json:"name"`
	Placeholder string `json:"placeholder,omitempty"`
	// ForHost says whether the request's host:port is among the
	// credential's hosts. The text lists only those that are (a
	// credential for other hosts has nothing to say about this request
	// but placeholder_foreign_host) and counts the rest in one line.
	ForHost bool `json:"for_host"`
	// Injected lists the locations where the placeholder becomes the real
	// value; empty when it is forwarded unchanged (Why says why).
	Injected []string `json:"injected"`
	Why      string   `json:"why,omitempty"`
}

// Explain explains method url for identity ("" for any allowed one) by
// the plan the proxy would make of it (planURL). It looks the host up
// unless lookup is false (an address literal is checked either way);
// nothing is sent to it.
func (e *RuleSet) Explain(ctx context.Context, method, rawURL, identity string, lookup bool) (Explanation, error) {
	u, err := hostport.ParseTarget(rawURL)
	if err != nil {
		return Explanation{}, err
	}
	var names []string
	if identity != "" {
		names = []string{identity}
	}
	r := e.roleFor(names)
	p, tunnel := e.planURL(r, method, u)
	if p.bad != nil {
		return Explanation{}, errors.New(p.bad.msg)
	}
	x := Explanation{Method: method, URL: rawURL, Way: modeForward, Host: p.host, Port: p.port, Identity: identity, Role: r.name, DLP: p.dlp}
	if tunnel != nil {
		x.Way = modeConnect
	}
	if identity != "" && !reload.Allowed([]string{identity}, e.allowed) {
		x.Decision, x.Reason, x.Rule = decisionDeny, reload.ReasonNotAllowed, strings.Join(e.allowed, ", ")
		return x, nil
	}
	d := p.decision
	x.Decision, x.Reason, x.Rule = decided(d), d.Reason, d.Rule
	if !d.Allow {
		x.Credentials = e.credentials(x, p, false)
		return x, nil
	}
	e.explainAddresses(ctx, &x, r, lookup)
	x.Intercepted = tunnel != nil && tunnel.intercept
	x.Credentials = e.credentials(x, p, x.Decision != decisionDeny)
	return x, nil
}

// planURL plans a request for u as an agent's tools send it: an http URL
// as a forward proxy request; an https one as a CONNECT tunnel, decided by
// host, and when the tunnel is intercepted as the request inside it,
// decided whole. tunnel is the https URL's CONNECT plan, nil for http.
func (e *RuleSet) planURL(r *role, method string, u *url.URL) (p, tunnel *plan) {
	if u.Scheme != "https" {
		return e.plan(r, requestLine{way: modeForward, method: method, url: u}), nil
	}
	tunnel = e.plan(r, requestLine{way: modeConnect, method: http.MethodConnect, host: u.Host})
	if tunnel.bad != nil || !tunnel.decision.Allow || !tunnel.intercept {
		return tunnel, tunnel
	}
	inner := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	return e.plan(r, requestLine{way: modeIntercept, method: method, url: inner, host: u.Host, tunnelHost: tunnel.host, tunnelPort: tunnel.port}), tunnel
}

// decided names a policy decision as the record does.
func decided(d policy.Decision) string {
	switch {
	case d.Report:
		return decisionReport
	case d.Allow:
		return decisionAllow
	}
	return decisionDeny
}

// explainAddresses adds the address-level decision the dialer would make
// to x, as the dialer makes it (Dialer.Check); a name is not looked up
// unless lookup.
func (e *RuleSet) explainAddresses(ctx context.Context, x *Explanation, r *role, lookup bool) {
	// An address literal is checked as it is, without a lookup.
	if _, err := netip.ParseAddr(x.Host); err != nil && !lookup {
		x.NotLookedUp = fmt.Sprintf("%s was not looked up: its addresses are checked when a request is made, and one the policy refuses (a private address) is refused then", x.Host)
		return
	}
	checks, err := r.dialer.Check(ctx, x.Host, x.Port)
	if err != nil {
		x.Lookup = err.Error()
	}
	allowed := 0
	for _, c := range checks {
		x.Addresses = append(x.Addresses, ExplainedAddress{Address: c.Addr.String(), Decision: decided(c.Decision), Reason: c.Decision.Reason, Rule: c.Decision.Rule})
		if c.Decision.Allow {
			allowed++
		}
	}
	if len(checks) > 0 && allowed == 0 {
		// The dialer refuses: the agent gets a 403 for the first
		// address refused.
		first := checks[0].Decision
		x.Decision, x.Reason, x.Rule = decided(first), first.Reason, first.Rule
	}
}

// intercepts says whether a CONNECT tunnel to host:port is terminated:
// when it is to a host of intercept.hosts or of a credential (which can only
// be injected into a tunnel it sees inside).
func (e *RuleSet) intercepts(host string, port int) bool {
	if !e.canIntercept {
		return false
	}
	for _, g := range e.intercept {
		if g.Match(host, port) {
			return true
		}
	}
	for _, c := range e.creds {
		if c.Matches(host, port) {
			return true
		}
	}
	return false
}

// credentials says what becomes of each credential's placeholder in the
// request planned by p, which is sent or not.
func (e *RuleSet) credentials(x Explanation, p *plan, sent bool) []ExplainedCredential {
	out := []ExplainedCredential{}
	for i, c := range e.creds {
		problem := p.creds[i]
		ec := ExplainedCredential{Name: c.Name, Placeholder: c.Placeholder, Injected: []string{}, ForHost: problem != problemForeignHost}
		switch {
		case !sent:
			ec.Why = "the request is refused: nothing is sent"
		case problem == problemForeignHost:
			ec.Why = problem + ": " + hostport.Join(x.Host, x.Port) + " is not among its hosts; a placeholder is forwarded unchanged and audited"
		case problem == problemCleartext:
			ec.Why = problem + ": http://" + hostport.Join(x.Host, x.Port) + " is plain HTTP, and the credential is sent only inside TLS (use https, or set plaintext_http: true on the credential for a local test host); a placeholder is forwarded unchanged and audited"
		case problem == problemNotGranted:
			ec.Why = problem + ": role " + p.role.name + " may not use it; a placeholder is forwarded unchanged and audited"
		default:
			for _, l := range secrets.Locations {
				if c.InjectsIn(l) {
					ec.Injected = append(ec.Injected, string(l))
				}
			}
			ec.Why = "a placeholder anywhere else is forwarded unchanged and audited (placeholder_location)"
		}
		out = append(out, ec)
	}
	return out
}

// Text is the explanation for a terminal.
func (x Explanation) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %s (%s", x.Method, x.URL, x.Decision, x.Reason)
	if x.Rule != "" {
		fmt.Fprintf(&b, ", rule %q", x.Rule)
	}
	b.WriteString(")\n")
	if x.Way == modeConnect {
		how := "a blind tunnel: only the host is decided, nothing inside is seen or injected"
		switch {
		case x.Decision == decisionDeny:
			how = "refused: no tunnel is opened"
		case x.Intercepted:
			how = "intercepted: each request inside is decided, injected and audited on its own"
		}
		fmt.Fprintf(&b, "  way:         CONNECT %s, %s\n", hostport.Join(x.Host, x.Port), how)
	} else {
		fmt.Fprintf(&b, "  way:         forward proxy request to %s\n", hostport.Join(x.Host, x.Port))
	}
	id := x.Identity
	if id == "" {
		id = "(any allowed; pass --identity to check one)"
	}
	fmt.Fprintf(&b, "  identity:    %s\n  role:        %s\n", id, x.Role)
	if x.DLP != config.DLPOff {
		what := "URL, headers and body scanned for keys before they are sent"
		switch {
		case x.DLP == "exempt":
			what = "this host is in the role's dlp.exempt: not scanned"
		case x.Way == modeConnect && !x.Intercepted:
			what = "a blind tunnel cannot be scanned"
		}
		fmt.Fprintf(&b, "  dlp:         %s (%s)\n", x.DLP, what)
	}
	for _, a := range x.Addresses {
		fmt.Fprintf(&b, "  address:     %s %s (%s)\n", a.Address, a.Decision, a.Reason)
	}
	if x.Lookup != "" {
		fmt.Fprintf(&b, "  address:     %s (the proxy would answer 502)\n", x.Lookup)
	}
	var others []string
	for _, c := range x.Credentials {
		if !c.ForHost {
			others = append(others, c.Name)
			continue
		}
		where := "not injected"
		if len(c.Injected) > 0 {
			where = "injected in " + strings.Join(c.Injected, ", ")
		}
		ph := ""
		if c.Placeholder != "" {
			ph = " (placeholder " + c.Placeholder + ")"
		}
		fmt.Fprintf(&b, "  credential:  %s%s: %s; %s\n", c.Name, ph, where, c.Why)
	}
	if len(others) > 0 {
		what := "a placeholder of theirs sent here is forwarded unchanged and audited (placeholder_foreign_host)"
		if x.Decision == decisionDeny {
			what = "the request is refused: nothing is sent"
		}
		fmt.Fprintf(&b, "  credentials: %d not for %s (%s); %s\n", len(others), hostport.Join(x.Host, x.Port), namesUpTo(others, 5), what)
	}
	b.WriteString("nothing was sent.\n")
	return b.String()
}

// namesUpTo joins the first limit names, and says how many more there
// are: the line stays short however many credentials are configured.
func namesUpTo(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:limit], ", ") + fmt.Sprintf(" and %d more; --json lists them", len(names)-limit)
}
