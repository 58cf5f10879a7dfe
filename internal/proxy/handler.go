package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/safetext"
)

// ServeHTTP is the pipeline's entry: it opens the exchange, admits the
// request, routes it by the way it came in, and records the outcome.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := guardFrom(r.Context())
	if g != nil {
		if g.enter() && slices.Contains(r.TransferEncoding, "chunked") {
			// Both Content-Length and chunked: framed by the chunks and
			// re-framed on the way out, and the connection is not reused
			// (RFC 9112 §6.1), so whatever a peer read differently ends
			// with it.
			w.Header().Set("Connection", "close")
		}
		defer g.leave()
	}
	x, r := s.open(w, r, g)
	defer s.close(x)

	mode := classify(r)
	x.p.way = mode
	identity, refused := g.identity(x.start)
	x.identity = identity
	if mode == modeLocal && (r.URL.Path == "/health" || r.URL.Path == "/ca.pem") {
		s.serveLocal(x.w, r, x)
		return
	}
	if refused != nil {
		refuseIdentity(x, refused)
		return
	}
	if mode == modeLocal {
		s.serveLocal(x.w, r, x)
		return
	}
	if !s.admit(x.w, r, x) {
		return
	}
	x.st.rules.planInto(&x.p, x.role, requestLine{way: mode, method: r.Method, url: r.URL, host: r.Host, target: r.Header.Get(targetHeader)})
	if x.p.bad != nil {
		writeError(x.w, x, x.p.bad.status, x.p.bad.msg, x.p.bad.reason)
		return
	}
	if mode == modeConnect {
		s.serveConnect(x.w, r, x)
		return
	}
	s.forward(x.w, r, x)
}

// refuseIdentity answers a request whose client certificate is missing or
// no longer valid.
func refuseIdentity(x *exchange, refused *reload.Refused) {
	x.identity, x.anonymous = "", true
	writeError(x.w, x, http.StatusForbidden, refused.Error()+"; without a valid client certificate only /health is served", refused.Reason)
}

// open starts an exchange: the configuration and role that decide it, its
// record, its counting writer, and the request carrying it in its context.
// The agent's role follows from the names of the certificate g carries.
func (s *Server) open(w http.ResponseWriter, r *http.Request, g *guardConn) (*exchange, *http.Request) {
	x := &exchange{start: time.Now(), st: s.acquire()}
	x.role = g.roleIn(x.st)
	if na, id, ok := g.certificate(); ok && g.tls.expiryNoted.CompareAndSwap(false, true) {
		s.metrics.certs.note(id, na)
	}
	x.id, x.client, x.method = audit.NewRequestID(), r.RemoteAddr, r.Method
	x.p = plan{role: x.role, path: audit.MaskPath(r.URL.RequestURI())}
	x.w = newResponseRecorder(w, x, s.cfg.Limits.IdleTimeout.D())
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	x.ctx = r.Context()
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = countingBody{ReadCloser: r.Body, n: &x.bytesIn}
	}
	return x, r
}

// close ends an exchange; deferred by every handler. A stream that breaks
// after its headers went out aborts the handler with http.ErrAbortHandler
// (net/http then cuts the client's connection, so it cannot mistake a
// truncated stream for a whole one); the record must be written all the
// same. Any other panic is a bug on this one request's path: it is logged
// and audited as an internal error, and the request's connection is cut the
// same way, while everyone else is served on.
func (s *Server) close(x *exchange) {
	defer x.st.release()
	if x.counted {
		defer s.clientRequests.give(x.who)
	}
	p := recover()
	if p == nil {
		s.finish(x)
		return
	}
	if p != http.ErrAbortHandler {
		s.metrics.panics.Inc()
		s.log.Error("panic serving a request; the request was cut, the proxy serves on",
			"request_id", x.id, "panic", s.scrub(fmt.Sprint(p)), "stack", s.scrub(string(debug.Stack())))
		x.out.decision = decisionError
		x.out.reason = "internal_error"
		x.out.err = "internal error: the proxy failed while serving this request (see its log, request id " + x.id + ")"
	} else {
		x.out.decision = decisionError
		x.out.reason, x.out.err = s.abortCause(x)
	}
	s.finish(x)
	panic(http.ErrAbortHandler)
}

// abortCause says which side ended a response that broke off after its
// head went out, and why.
func (s *Server) abortCause(x *exchange) (reason, msg string) {
	sent := x.w.bytesOut
	switch {
	case s.cutting.Load():
		return "shutdown_cut", fmt.Sprintf("the proxy was shutting down and limits.shutdown_grace (%s) ran out after %d bytes of the response", s.cfg.Limits.ShutdownGrace, sent)
	case x.decodeErr != nil:
		return reasonDecodeLimit, fmt.Sprintf("the response was cut after %d bytes: %s", sent, x.decodeErr.Error())
	case x.clientErr != nil:
		return "client_closed", fmt.Sprintf("the client went away after %d bytes of the response: %v", sent, x.clientErr)
	case x.ctx.Err() != nil:
		// net/http cancels the request when the client's connection goes;
		// the upstream read then fails with that cancellation.
		return "client_closed", fmt.Sprintf("the client went away after %d bytes of the response", sent)
	case x.upstreamErr != nil:
		s.metrics.upstreamErrors.WithLabelValues(hostClass(x), "aborted").Inc()
		return "upstream_aborted", fmt.Sprintf("the upstream broke off the response after %d bytes: %s", sent, x.st.creds.scrub(x.upstreamErr.Error()))
	default:
		return "stream_aborted", fmt.Sprintf("the response broke off after %d bytes", sent)
	}
}

// classify tells which way a request came in.
func classify(r *http.Request) string {
	switch {
	case r.Method == http.MethodConnect:
		return modeConnect
	case r.URL.IsAbs():
		return modeForward
	case r.Header.Get(targetHeader) != "":
		return modeTarget
	default:
		return modeLocal
	}
}

// admit refuses a request before any work when the audit log is failing or
// has no room promised for this request's records (never proxy unaudited),
// or the client has too many requests in flight or is over its rate.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	err := s.audit.Healthy()
	if err == nil {
		x.release, err = s.disk.reserve()
	}
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, x, http.StatusServiceUnavailable, "audit log cannot be written, so nothing is proxied: "+err.Error(), "audit_unavailable")
		return false
	}
	who := clientKey(x.identity, r.RemoteAddr)
	x.who = who
	// A tunnel is bounded by max_tunnels_per_identity and its requests
	// each count here on their own; the CONNECT itself is not one more.
	if x.p.way != modeConnect {
		if !s.clientRequests.take(who, x.role.maxRequests) {
			w.Header().Set("Retry-After", "1")
			writeError(w, x, http.StatusTooManyRequests, fmt.Sprintf("proxy: this client already has %d requests in flight (max_requests_per_identity of role %s); wait for one to finish", x.role.maxRequests, x.role.name), "too_many_requests_in_flight")
			return false
		}
		x.counted = true
	}
	if ok, wait := x.role.limiter.allow(who); !ok {
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, x, http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded for this client; retry in %ds", secs), "rate_limited")
		return false
	}
	return true
}

// clientCounts counts what each client (clientKey) holds — its tunnels,
// its requests in flight — against a share, so that one agent cannot take
// every slot: the rate limit bounds how many requests start, not how long
// each lasts, and every one holds buffers, a goroutine and an upstream
// connection until it ends. The zero value is ready to use.
type clientCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// take counts one more for who; false, counting nothing, when its share
// (limit) is used up.
func (c *clientCounts) take(who string, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[who] >= limit {
		return false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[who]++
	return true
}

// give hands back one that take counted.
func (c *clientCounts) give(who string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[who]--; c.n[who] <= 0 {
		delete(c.n, who)
	}
}

// clientKey is who a limit applies to: the certificate identity when
// there is one, else the client's address without its port.
func clientKey(identity, remoteAddr string) string {
	if identity != "" {
		return "id:" + identity
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return "addr:" + remoteAddr
	}
	return "addr:" + host
}

// finish writes the exchange's audit record and metrics.
func (s *Server) finish(x *exchange) {
	if x.quiet {
		return
	}
	s.noteDLP(x)
	rec := x.record(true)
	d := time.Since(x.start)
	rec.DurationMs = ms(d)
	if x.release != nil {
		// After the record below, whether it is written or thinned out.
		defer x.release()
	}
	if rec.Reason == "audit_unavailable" {
		// While the log fails or its room runs low, refusals must not use
		// up what is left for the records of the requests in flight: one a
		// second is written, naming how many went unrecorded before it.
		write, skipped := s.unavailable.take(x.start)
		if !write {
			s.metrics.observe(&rec, d)
			return
		}
		if skipped > 0 {
			rec.Error += fmt.Sprintf(" (and %d more requests refused the same way since the previous such record, counted in the metrics but not recorded one by one)", skipped)
		}
	}
	s.record(&rec, d)
}

// writeAhead records an allowed request before anything is sent for it, so
// that a request that left the proxy has a trace even if the proxy is
// killed before the request ends (its outcome record, written by finish,
// then never comes; audit verify and show report the start without an end).
// If the record cannot be written the request is refused: nothing is
// proxied unaudited.
func (s *Server) writeAhead(w http.ResponseWriter, x *exchange) bool {
	rec := x.record(false)
	if err := s.writeRecord(&rec); err != nil {
		s.metrics.auditErrors.Inc()
		s.log.Error("audit write failed; refusing new requests until it works again", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, x, http.StatusServiceUnavailable, "audit log cannot be written, so nothing is proxied: "+err.Error(), "audit_unavailable")
		return false
	}
	return true
}

// record writes one audit record and counts it. A record of no exchange
// (a connection refused before any request) names the current
// configuration.
func (s *Server) record(rec *audit.Record, d time.Duration) {
	if rec.Config == "" {
		rec.Config = s.cur.Load().version
	}
	if err := s.writeRecord(rec); err != nil {
		s.metrics.auditErrors.Inc()
		s.log.Error("audit write failed; refusing new requests until it works again", "err", err)
	}
	s.metrics.observe(rec, d)
}

// writeRecord writes rec to the audit log, timing it.
func (s *Server) writeRecord(rec *audit.Record) error {
	start := time.Now()
	err := s.audit.Write(rec)
	s.metrics.auditWrite.Observe(time.Since(start).Seconds())
	return err
}

// auditRejection records a request net/http refused before any handler saw it.
func (s *Server) auditRejection(g *guardConn, status int, detail string, head []byte) {
	rec := audit.Record{
		Time:      time.Now().UTC(),
		RequestID: audit.NewRequestID(),
		Client:    g.RemoteAddr().String(),
		Mode:      modeMalformed,
		Decision:  decisionDeny,
		Reason:    "malformed_request",
		Status:    status,
		Error:     "malformed request: " + detail,
	}
	// Name the request line that was refused, when there was one.
	line, _, _ := strings.Cut(string(head), "\n")
	if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		rec.Method = safetext.Cut(f[0], 16)
		rec.Path = audit.MaskPath(safetext.Cut(f[1], 256))
	}
	s.record(&rec, 0)
}

// auditTLSFailure records a connection whose TLS handshake failed, or that
// spoke plain HTTP to the TLS port.
func (s *Server) auditTLSFailure(g *guardConn, reason, detail string) {
	rec := audit.Record{
		Time:      time.Now().UTC(),
		RequestID: audit.NewRequestID(),
		Client:    g.RemoteAddr().String(),
		Mode:      modeTLS,
		Decision:  decisionDeny,
		Reason:    reason,
		Error:     detail,
	}
	if reason == "tls_required" {
		rec.Status = http.StatusBadRequest
	}
	s.record(&rec, 0)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sampler lets through at most one event a second and counts the rest.
type sampler struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// take reports whether the event at now is let through, and how many were
// held back since the last one that was.
func (p *sampler) take(now time.Time) (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last) < time.Second {
		p.skipped++
		return false, 0
	}
	n := p.skipped
	p.last, p.skipped = now, 0
	return true, n
}
