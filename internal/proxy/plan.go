package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/safetext"
)

// requestLine is what a plan is made from: the way a request came in and
// what its request line and routing header say, nothing of it judged yet.
type requestLine struct {
	way    string   // modeForward, modeTarget, modeConnect or modeIntercept
	method string   // as sent, in whatever case
	url    *url.URL // the request-target as net/http parsed it
	// host is the Host header; for CONNECT, the authority.
	host string
	// target is the X-Target-URL header (modeTarget).
	target string
	// tunnelHost and tunnelPort are the destination of the tunnel a
	// modeIntercept request came through (its CONNECT authority).
	tunnelHost string
	tunnelPort int
}

// plan is everything the configuration decides about one request before
// anything is sent: where it goes (parsed once), the name-level decision
// and the rule behind it, whether a tunnel is intercepted, how the role's
// DLP treats it, and what becomes of each credential's placeholder. It is
// made by RuleSet.plan, a pure function of the rule set and the request
// line; the proxy executes it, and policy explain and /explain describe
// it, so neither can say what the other does not do. What only sending
// tells (the resolved address, the upstream's answer) is the exchange's
// outcome, added to the plan in the audit record.
type plan struct {
	way  string
	role *role
	// scheme, host, port and path are the record's: host and port are
	// the destination credentials are bound to (the target URL or CONNECT
	// authority, never an inner Host header); path is masked.
	scheme string
	host   string
	port   int
	path   string
	// up is where a request is sent; nil for a tunnel and a refused line.
	up *upstream
	// bad is the refusal of a request line no plan can be made of (an
	// unsupported scheme, an unparsable target, a Host that is not the
	// tunnel's): nothing below it is decided.
	bad *refusal
	// decision is the policy's name-level decision: for a tunnel by host
	// and port, for a request by method and path too.
	decision policy.Decision
	// intercept says whether an allowed tunnel is terminated (modeConnect).
	intercept bool
	// dlp is the role's outbound scanning of the request: off, report,
	// enforce or exempt.
	dlp string
	// creds are, for each of the vault's credentials, the problem that
	// keeps its placeholder from being injected (leftProblems);
	// problemLocation means it is injected in the locations it names and
	// left alone anywhere else.
	creds []string
}

// refusal is an answer decided before anything is sent.
type refusal struct {
	status      int
	reason, msg string
}

// scans says whether the plan's request is scanned for secrets before it
// is sent.
func (p *plan) scans() bool { return p.dlp == dlpReport || p.dlp == dlpEnforce }

// injects says whether credential i's placeholder may become its value in
// this request (in the locations the credential names).
func (p *plan) injects(i int) bool { return p.creds[i] == problemLocation }

// forCredential says whether the destination is one of a credential's
// hosts, for metrics bounded by kind of host.
func (p *plan) forCredential() bool {
	for _, c := range p.creds {
		if c != problemForeignHost {
			return true
		}
	}
	return false
}

// The DLP modes of a plan besides config.DLPOff.
const (
	dlpReport  = config.DLPReport
	dlpEnforce = config.DLPEnforce
	dlpExempt  = "exempt"
)

// plan makes the plan of line for an agent of role r. It sends nothing,
// looks nothing up and changes nothing.
func (e *RuleSet) plan(r *role, line requestLine) *plan {
	p := new(plan)
	e.planInto(p, r, line)
	return p
}

// planInto is plan into p, which it overwrites: an exchange's plan lives in
// the exchange.
func (e *RuleSet) planInto(p *plan, r *role, line requestLine) {
	*p = plan{way: line.way, role: r}
	if line.url != nil {
		p.path = audit.MaskPath(line.url.RequestURI())
	}
	if p.bad = p.route(line); p.bad != nil {
		return
	}
	if p.way == modeConnect {
		p.decision = r.policy.Decide(p.host, p.port, true)
		p.intercept = e.intercepts(p.host, p.port)
	} else {
		// The path as the upstream will receive it, still escaped: a rule
		// cannot judge "%2F" or "%2e%2e" once they are decoded.
		p.decision = r.policy.DecideRequest(p.host, p.port, line.method, p.up.url.EscapedPath())
	}
	p.dlp = r.dlp.mode(p.host, p.port)
	// A tunnel's upstream leg is TLS, and so is what is injected inside an
	// intercepted one.
	tls := p.way == modeConnect || p.scheme == "https"
	p.creds = make([]string, len(e.creds))
	for i, c := range e.creds {
		p.creds[i] = leftProblem(c, p.host, p.port, tls, r.grants(i))
	}
}

// route parses where line goes, once: the scheme, host and port, and for a
// request the upstream URL and Host header. It returns the refusal of a
// line that names no destination the proxy can reach.
func (p *plan) route(line requestLine) *refusal {
	var err error
	switch line.way {
	case modeForward:
		u := line.url
		p.scheme = u.Scheme
		if u.Scheme != "http" && u.Scheme != "https" {
			return &refusal{http.StatusBadRequest, "bad_scheme", fmt.Sprintf("proxy: request URL %q has unsupported scheme %q (want http or https)", safetext.Cut(u.Redacted(), 200), u.Scheme)}
		}
		defPort := 80
		if u.Scheme == "https" {
			defPort = 443
		}
		if p.host, p.port, err = hostport.Parse(u.Host, defPort); err != nil {
			return &refusal{http.StatusBadRequest, "bad_target", "proxy: bad request URL host: " + err.Error()}
		}
		out := *u
		out.Host = hostport.Join(p.host, p.port)
		p.up = &upstream{url: &out, host: u.Host}
	case modeTarget:
		t, err := hostport.ParseTarget(line.target)
		if err != nil {
			return &refusal{http.StatusBadRequest, "bad_target", "proxy: bad " + targetHeader + ": " + err.Error()}
		}
		p.scheme, p.host = t.Scheme, t.Hostname()
		p.port, _ = strconv.Atoi(t.Port())
		path, q := hostport.JoinPath(t, line.url.Path, line.url.RawQuery)
		p.path = audit.MaskPath(joinQuery(path, q))
		out := &url.URL{Scheme: t.Scheme, Host: hostport.Join(p.host, p.port), Path: path, RawQuery: q}
		p.up = &upstream{url: out, host: out.Host}
	case modeConnect:
		if p.host, p.port, err = hostport.Parse(line.host, 0); err != nil {
			return &refusal{http.StatusBadRequest, "bad_target", "proxy: bad CONNECT authority: " + err.Error()}
		}
	case modeIntercept:
		p.scheme, p.host, p.port = "https", line.tunnelHost, line.tunnelPort
		if h, port, err := hostport.Parse(line.host, p.port); err != nil || h != p.host || port != p.port {
			return &refusal{http.StatusMisdirectedRequest, "host_mismatch", fmt.Sprintf("proxy: the request's Host %q is not the tunnel's destination %s; one tunnel reaches one host", safetext.Cut(line.host, 200), hostport.Join(p.host, p.port))}
		}
		u := line.url
		out := &url.URL{Scheme: "https", Host: hostport.Join(p.host, p.port), Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
		p.up = &upstream{url: out, host: line.host}
	}
	if p.up != nil {
		p.up.destHost, p.up.destPort = p.host, p.port
	}
	return nil
}
