package proxy

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/policy"
)

// planned are the reasons a plan decides alone, before anything is sent:
// a record with one of them must be what Explain says of its request.
var planned = map[string]bool{
	policy.ReasonAllowlist: true, policy.ReasonDenylist: true, policy.ReasonTelemetry: true,
	policy.ReasonDefaultAllow: true, policy.ReasonDefaultDeny: true, policy.ReasonConnectPort: true,
	policy.ReasonMethodDenied: true, policy.ReasonPathDenied: true, "intercepted": true,
}

// explainAgrees runs every request a test sent through the proxy (every
// case of every decision test: serveProxy calls it when the test ends)
// through Explain too, by the configuration that decided it, and requires
// the same answer: the decision and reason of the record, whether a tunnel
// was intercepted, which credentials were injected and why each
// placeholder left alone was. Explain and the proxy cannot disagree.
func explainAgrees(t testing.TB, srv *Server, recs []audit.Record) {
	st := srv.cur.Load()
	for _, rec := range recs {
		if rec.Config != st.version || !planned[rec.Reason] && len(rec.Placeholders) == 0 && len(rec.Credentials) == 0 {
			continue
		}
		var rawURL string
		switch rec.Mode {
		case modeForward, modeTarget:
			rawURL = rec.Scheme + "://" + hostport.Join(rec.Host, rec.Port) + rec.Path
		case modeIntercept:
			rawURL = "https://" + hostport.Join(rec.Host, rec.Port) + rec.Path
		case modeConnect:
			tunnelAgrees(t, st.rules, rec)
			continue
		default:
			continue
		}
		x, err := st.rules.Explain(context.Background(), rec.Method, rawURL, rec.Identity, false)
		if err != nil {
			t.Errorf("explain %s %s (record %s): %v", rec.Method, rawURL, rec.RequestID, err)
			continue
		}
		if x.Role != rec.Role {
			continue // the role was selected by another of the certificate's names
		}
		what := rec.Mode + " " + rec.Method + " " + rawURL
		if planned[rec.Reason] && (x.Decision != rec.Decision || x.Reason != rec.Reason) {
			t.Errorf("%s: the proxy decided %s %s, explain says %s %s", what, rec.Decision, rec.Reason, x.Decision, x.Reason)
		}
		if x.Decision == decisionDeny {
			// Refused at an address the dialer checks (explain looks at an
			// address literal as the dialer does): nothing was sent, though
			// the proxy noted the placeholders it had read.
			continue
		}
		byName := map[string]ExplainedCredential{}
		for _, c := range x.Credentials {
			byName[c.Name] = c
		}
		for _, name := range rec.Credentials {
			if len(byName[name].Injected) == 0 {
				t.Errorf("%s: the proxy injected %s; explain says %q", what, name, byName[name].Why)
			}
		}
		for _, n := range rec.Placeholders {
			c := byName[n.Credential]
			if n.Problem == problemLocation && (len(c.Injected) == 0 || strings.Contains(strings.Join(c.Injected, ","), n.Location)) ||
				n.Problem != problemLocation && !strings.HasPrefix(c.Why, n.Problem) {
				t.Errorf("%s: the proxy left %s's placeholder alone (%s %s); explain says injected in %v, %q", what, n.Credential, n.Problem, n.Location, c.Injected, c.Why)
			}
		}
	}
}

// tunnelAgrees checks a CONNECT record against the tunnel half of the plan
// Explain makes of an https URL (planURL): the decision on the tunnel and
// whether it is intercepted.
func tunnelAgrees(t testing.TB, e *RuleSet, rec audit.Record) {
	var names []string
	if rec.Identity != "" {
		names = []string{rec.Identity}
	}
	r := e.roleFor(names)
	if r.name != rec.Role {
		return
	}
	_, tunnel := e.planURL(r, "GET", &url.URL{Scheme: "https", Host: hostport.Join(rec.Host, rec.Port), Path: "/"})
	what := "CONNECT " + hostport.Join(rec.Host, rec.Port)
	switch d := tunnel.decision; {
	case rec.Reason == "intercepted":
		if !d.Allow || !tunnel.intercept {
			t.Errorf("%s: the proxy intercepted the tunnel; its plan says %s %s, intercept %v", what, decided(d), d.Reason, tunnel.intercept)
		}
	case planned[rec.Reason]:
		if decided(d) != rec.Decision || d.Reason != rec.Reason || d.Allow && tunnel.intercept {
			t.Errorf("%s: the proxy decided %s %s (a blind tunnel); its plan says %s %s, intercept %v", what, rec.Decision, rec.Reason, decided(d), d.Reason, tunnel.intercept)
		}
	}
}
