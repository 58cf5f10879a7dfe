package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/dlp"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// role is one compiled role: the policy, limits, credential grants and
// outbound scanning of the agents whose certificates it matches.
type role struct {
	name string
	// identities are the globs over a certificate's names that select
	// the role; nil for the role of those no role selects.
	identities []string
	policy     *policy.Policy
	dialer     *policy.Dialer
	maxTunnels int
	// maxRequests bounds one identity's requests in flight (not its
	// tunnels, which maxTunnels bounds).
	maxRequests int
	rate        float64 // requests a second per identity; 0 = unlimited
	burst       int
	// granted[i] says whether the vault's credential i may be injected;
	// nil grants every credential.
	granted []bool
	dlp     *dlpRole // nil: off

	// What serves the role's requests; nil in an RuleSet for the
	// command line. Each role has its own transport because its dialer
	// differs (private_allow): a pooled connection dialled for one role
	// must never carry another's request.
	limiter   *rateLimiter
	transport *http.Transport
	reverse   *httputil.ReverseProxy
}

// grants reports whether credential i may be injected for this role.
func (r *role) grants(i int) bool { return r.granted == nil || r.granted[i] }

// compile is the configuration's provision step: it turns every rule
// string of cfg (the roles' policies, credential grants and dlp.exempt,
// intercept.hosts, tls.allowed_identities) into the typed rule set that
// requests are planned by, so that nothing after it parses a host or a
// glob. creds are the credentials in vault order; canIntercept says
// whether there is an interception CA, and extra are interception globs
// given as options, besides intercept.hosts.
func compile(cfg *config.Config, creds []secrets.Credential, resolver *net.Resolver, canIntercept bool, extra []hostport.Glob) (*RuleSet, error) {
	roles, def, err := compileRoles(cfg, creds, resolver)
	if err != nil {
		return nil, err
	}
	e := &RuleSet{roles: roles, def: def, creds: creds, canIntercept: canIntercept, allowed: cfg.TLS.Identities()}
	if !canIntercept {
		return e, nil
	}
	e.intercept = slices.Clip(extra)
	for _, h := range cfg.Intercept.Hosts {
		g, err := hostport.ParseGlob(h)
		if err != nil {
			return nil, fmt.Errorf("intercept.hosts: %w", err)
		}
		e.intercept = append(e.intercept, g)
	}
	return e, nil
}

// compileRoles compiles cfg's roles for the credentials creds (their vault
// order): the roles in matching order, and the role of identities none
// selects (default_role).
func compileRoles(cfg *config.Config, creds []secrets.Credential, resolver *net.Resolver) (roles []*role, def *role, err error) {
	index := map[string]int{}
	for i, c := range creds {
		index[c.Name] = i
	}
	byName := map[string]*role{}
	for _, er := range cfg.EffectiveRoles() {
		pol, err := policy.New(er.Policy)
		if err != nil {
			return nil, nil, fmt.Errorf("role %q: %w", er.Name, err)
		}
		r := &role{name: er.Name, identities: er.Identities, policy: pol, dialer: &policy.Dialer{Policy: pol, Resolver: resolver}, maxTunnels: max(er.MaxTunnelsPerIdentity, 1), maxRequests: max(er.MaxRequestsPerIdentity, 1), rate: er.RatePerSecond, burst: er.RateBurst}
		if er.Credentials != nil {
			r.granted = make([]bool, len(creds))
			for _, name := range er.Credentials {
				i, ok := index[name]
				if !ok {
					return nil, nil, fmt.Errorf("role %q: credential %q is not configured", er.Name, name)
				}
				r.granted[i] = true
			}
		}
		if r.dlp, err = newDLPRole(er.DLP); err != nil {
			return nil, nil, fmt.Errorf("role %q: %w", er.Name, err)
		}
		byName[r.name] = r
		if r.identities != nil {
			roles = append(roles, r)
		}
	}
	def = byName[cfg.DefaultRole]
	if def == nil {
		return nil, nil, fmt.Errorf("default_role %q is not a role", cfg.DefaultRole)
	}
	return roles, def, nil
}

// all are the configured roles and the default one (which may be one of
// them), in a slice of their own: the roles slice is shared by every
// goroutine that reads the state.
func (e *RuleSet) all() []*role {
	return append(slices.Clip(e.roles), e.def)
}

// roleFor is the role of an agent with these certificate names: the first
// role one of whose globs matches one of them, else the default role.
func (e *RuleSet) roleFor(names []string) *role {
	if len(names) > 0 {
		for _, r := range e.roles {
			if reload.Allowed(names, r.identities) {
				return r
			}
		}
	}
	return e.def
}

// state is what one configuration decides: the roles, the credentials and
// the interception rule, with the transports that serve them. Reload swaps
// it whole, so each request is decided and served by one version from its
// first byte to its last; a state replaced is closed once the last request
// holding it has ended.
type state struct {
	cfg     *config.Config
	version string
	rules   *RuleSet
	creds   *Credentials
	scanner *dlp.Scanner
	// closeCreds releases the credentials' vault; nil when the caller
	// keeps it.
	closeCreds func()

	users   atomic.Int64
	retired atomic.Bool
	once    sync.Once
	onClose func(*state)
}

// newState compiles cfg for s: tunnels are intercepted, when s has an
// interception CA, for the hosts of intercept.hosts, of its interception
// options and of the credentials.
func (s *Server) newState(cfg *config.Config, creds *Credentials) (*state, error) {
	var list []secrets.Credential
	if creds != nil {
		list = creds.creds
	}
	var extra []hostport.Glob
	if s.intercept != nil {
		extra = s.intercept.Hosts
	}
	rules, err := compile(cfg, list, s.resolver, s.intercept != nil, extra)
	if err != nil {
		return nil, err
	}
	st := &state{cfg: cfg, version: cfg.Version(), creds: creds, scanner: newScanner(creds), onClose: s.forget, rules: rules}
	// The listener's identities decide, not the configuration's: without
	// TLS every client is let in.
	st.rules.allowed = []string{"*"}
	if s.tls != nil {
		st.rules.allowed = s.tls.AllowedIdentities
	}
	for _, r := range st.rules.all() {
		if r.transport != nil {
			continue // the default role is also in roles when default_role names one
		}
		r.limiter = s.limiterFor(r)
		r.transport = s.newTransport(r)
		r.reverse = s.newReverseProxy(st, r)
	}
	return st, nil
}

// limiterFor keeps a role's token buckets across reloads while its name
// and rates stay the same, so that a reload does not hand every agent a
// fresh burst.
func (s *Server) limiterFor(r *role) *rateLimiter {
	key := limiterKey(r)
	s.limitersMu.Lock()
	defer s.limitersMu.Unlock()
	l := s.limiters[key]
	if l == nil {
		l = newRateLimiter(r.rate, r.burst)
		s.limiters[key] = l
	}
	return l
}

func limiterKey(r *role) string { return fmt.Sprintf("%s/%g/%d", r.name, r.rate, r.burst) }

// pruneLimiters forgets the buckets of roles st no longer has (a state
// still in flight keeps its own by pointer).
func (s *Server) pruneLimiters(st *state) {
	keep := map[string]bool{}
	for _, r := range st.rules.all() {
		keep[limiterKey(r)] = true
	}
	s.limitersMu.Lock()
	defer s.limitersMu.Unlock()
	for k := range s.limiters {
		if !keep[k] {
			delete(s.limiters, k)
		}
	}
}

// acquire is the state new requests get, taken for the caller until it
// calls release.
func (s *Server) acquire() *state {
	for {
		st := s.cur.Load()
		st.users.Add(1)
		if s.cur.Load() == st {
			return st
		}
		// Replaced between the two loads: let it go and take the new one.
		st.release()
	}
}

func (st *state) release() {
	if st.users.Add(-1) == 0 && st.retired.Load() {
		st.once.Do(st.close)
	}
}

// retire marks a replaced state; it closes when its last user is done.
func (st *state) retire() {
	st.retired.Store(true)
	if st.users.Load() == 0 {
		st.once.Do(st.close)
	}
}

func (st *state) close() {
	for _, r := range st.rules.all() {
		if r.transport != nil {
			r.transport.CloseIdleConnections()
		}
	}
	if st.closeCreds != nil {
		st.closeCreds()
	}
	if st.onClose != nil {
		st.onClose(st)
	}
}

// forget drops a closed state from those whose secrets are scrubbed from
// the proxy's log.
func (s *Server) forget(st *state) {
	s.liveMu.Lock()
	delete(s.live, st)
	s.liveMu.Unlock()
}

// scrub removes every real value of every state still in use from text
// bound for the log: a message about a request decided by a replaced
// configuration can quote that configuration's secrets.
func (s *Server) scrub(text string) string {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for st := range s.live {
		text = st.creds.scrub(text)
	}
	return text
}
