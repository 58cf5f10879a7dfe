package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/slapenir/slapenir/internal/safetext"
)

// reasonExplainOther refuses an agent's /explain about another identity.
const reasonExplainOther = "explain_other_identity"

// serveOwnExplain answers GET /explain?method=…&url=…[&identity=…] on the
// agents' port, for the agent that asks and no one else. Which role another
// identity has, what it may reach and which credentials it may use are the
// operator's to know (slapenir policy explain --identity NAME, from the
// configuration), not a neighbour's: an agent that could ask about any name
// would map every other agent's grants and find the one worth impersonating.
// So identity, when given, must be one of the names of the caller's own
// certificate; anything else is refused and audited. The answer is decided
// by the caller's real role (selected by all its names, as its requests
// are), and lists only the credentials that role may use, as /placeholders
// does.
func (s *Server) serveOwnExplain(w http.ResponseWriter, r *http.Request, x *exchange, g *guardConn) {
	q := r.URL.Query()
	if q.Get("url") == "" {
		writeError(w, x, http.StatusBadRequest, "explain: give the request to explain as ?method=GET&url=https://host/path (it is explained for your own certificate's identity)", "explain_bad_request")
		return
	}
	names := g.names()
	asked := q.Get("identity")
	if asked != "" && !slices.Contains(names, asked) {
		// Audited: asking about a neighbour is a probe worth a record.
		x.quiet = false
		self := "this connection has no client certificate"
		if len(names) > 0 {
			self = fmt.Sprintf("yours is %q", names[0])
		}
		writeError(w, x, http.StatusForbidden, fmt.Sprintf("explain: an agent may ask only about its own identity (%s), not %q; the operator can run slapenir policy explain --identity NAME", self, safetext.Cut(asked, 200)), reasonExplainOther)
		return
	}
	method := q.Get("method")
	if method == "" {
		method = http.MethodGet
	}
	// Not looked up: the name is the agent's to choose, and /explain is
	// neither decided nor audited as a request is, so a lookup would be a
	// channel out through the proxy's resolver (a name carrying data to a
	// nameserver the agent runs). The operator's slapenir policy explain
	// looks names up.
	e, err := x.st.rules.Explain(r.Context(), method, q.Get("url"), x.st.rules.nameFor(x.role, asked, names), false)
	if err != nil {
		writeError(w, x, http.StatusBadRequest, "explain: "+err.Error(), "explain_bad_request")
		return
	}
	// Explain lists every configured credential, in vault order.
	own := e.Credentials[:0:0]
	for i, c := range e.Credentials {
		if x.role.grants(i) {
			own = append(own, c)
		}
	}
	e.Credentials = own
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(e)
}

// nameFor is the one of names (preferring asked) that, alone, selects the
// role r, so an explanation by one name is decided as requests by all the
// certificate's names are; "" when there are none (no mTLS).
func (e *RuleSet) nameFor(r *role, asked string, names []string) string {
	if asked != "" && e.roleFor([]string{asked}) == r {
		return asked
	}
	for _, n := range names {
		if e.roleFor([]string{n}) == r {
			return n
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return ""
}
