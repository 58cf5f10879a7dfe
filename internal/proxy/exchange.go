package proxy

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
)

// Modes of the audit record: which of the ways in a request used.
const (
	modeForward   = "forward"
	modeConnect   = "connect"
	modeTarget    = "target"
	modeLocal     = "local"
	modeMalformed = "malformed"
	modeTLS       = "tls"
	modeIntercept = "intercept"
)

// Decisions of the audit record.
const (
	decisionAllow  = "allow"
	decisionDeny   = "deny"
	decisionReport = "report"
	decisionError  = "error"
)

// exchange is one request's state as it moves through the pipeline: its
// plan, its outcome so far, and the counting response writer. Its audit
// record is made from them (record), never written field by field.
type exchange struct {
	// st is the configuration that decides the exchange from its start
	// to its end, even when a reload replaces it meanwhile; role is the
	// agent's role in it.
	st    *state
	role  *role
	start time.Time
	// id, client and method are the record's request ID, the client's
	// address and the request's method as sent.
	id, client, method string
	// identity is the client certificate's identity; anonymous is set when
	// the certificate was refused, so the record names neither it nor a
	// role.
	identity  string
	anonymous bool
	// p is the exchange's plan: until the request is routed, only its way
	// in, role and path.
	p       plan
	out     outcome
	w       *responseRecorder
	bytesIn atomic.Int64
	// upgradedOut counts what an upgraded connection sent the client, which
	// bypasses the response recorder.
	upgradedOut atomic.Int64
	// usage and the redaction counts are filled by the credential stage.
	usage      usage
	redactions atomic.Int64
	// dlp are the outbound scan's findings.
	dlp          dlpNotes
	bodyRedactor interface{ Count() int }
	// quiet exchanges (health checks, metric scrapes) are not audited: they
	// never leave the proxy and would drown the log.
	quiet bool
	// release gives back the audit room admit reserved for this exchange.
	release func()
	// counted is set when admit took a place among its client's requests
	// in flight (clientRequests, under who), for close to give back.
	counted bool
	// upstreamErr and clientErr are the first failure reading the
	// upstream's response body and writing to the client, for saying which
	// side ended a stream. Both are set on the handler's goroutine.
	upstreamErr error
	clientErr   error
	// decodeErr is a decoding limit the upstream's compressed body went
	// over after the head went out (see decode.go); set on the handler's
	// goroutine.
	decodeErr error
	// ctx is the request's: done once the client has gone.
	ctx context.Context
	// who is the client the per-client limits count the exchange against
	// (clientKey); set by admit.
	who string
}

// upstreamBody notes the first failure reading an upstream's response body.
type upstreamBody struct {
	io.ReadCloser
	x *exchange
}

func (b upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.x.upstreamErr == nil {
		b.x.upstreamErr = err
	}
	return n, err
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// outcome is what happened to an exchange, beyond its plan: what decided
// it (the plan's rule, a refusal, an address checked at dial time, a
// finding), the status it was answered with, and what is noted of it.
type outcome struct {
	// decision is "" until something other than an allow decides.
	decision, reason, err string
	status                int
	// refused is set once the exchange was answered with a refusal or
	// failure (fail): what is noted after it adds fields, never a reason.
	refused bool
	// path replaces the plan's in the record when the URL carried
	// secret-shaped data (outbound).
	path string
	// dlp are the rules the outbound scan found, once noteDLP has run.
	dlp []string
}

// The outcome of an exchange is noted through these methods, not by
// writing its decision and reason directly: the order of what decides is
// kept in one place, and a refusal, once noted, is final.

// allow notes why the request was let through (the rule that allowed it).
func (x *exchange) allow(reason string) {
	if !x.out.refused {
		x.out.reason = reason
	}
}

// report notes what report mode let through: what would have refused it.
func (x *exchange) report(reason string) {
	if !x.out.refused {
		x.out.decision, x.out.reason = decisionReport, reason
	}
}

// fail notes a refusal or failure. 4xx replies and 503 are refusals (deny);
// other 5xx are failures after the request was allowed (error).
func (x *exchange) fail(status int, reason, msg string) {
	x.out.refused = true
	x.out.status = status
	x.out.reason = reason
	x.out.err = msg
	if status >= 500 && status != http.StatusServiceUnavailable {
		x.out.decision = decisionError
	} else {
		x.out.decision = decisionDeny
	}
}

// refuseQuietly is fail for a refusal nobody can be answered for (the
// agent's TLS inside a tunnel failed, the client went away, a streamed
// body's DLP finding cut the request after it was sent on): the record
// says what happened, with the decision given.
func (x *exchange) refuseQuietly(status int, decision, reason, msg string) {
	x.out.refused = true
	if status != 0 {
		x.out.status = status
	}
	x.out.decision, x.out.reason, x.out.err = decision, reason, msg
}

// record is the exchange's audit record, the one place it is made: the
// plan (where the request went, by which way, for which role) and the
// outcome. At the end (end) it adds what only the end knows: the status
// the client got, the bytes both ways, the timings, the credentials
// injected and the placeholders left alone, the redactions and the DLP
// findings. Before that it is the write-ahead record of a request about to
// be sent.
func (x *exchange) record(end bool) audit.Record {
	p := &x.p
	rec := audit.Record{
		Time:      x.start.UTC(),
		RequestID: x.id,
		Client:    x.client,
		Method:    x.method,
		Path:      p.path,
		Mode:      p.way,
		Scheme:    p.scheme,
		Host:      p.host,
		Port:      p.port,
		Decision:  cmp.Or(x.out.decision, decisionAllow),
		Reason:    x.out.reason,
		Error:     x.out.err,
		Status:    x.out.status,
		Config:    x.st.version,
	}
	if x.out.path != "" {
		rec.Path = x.out.path
	}
	if !x.anonymous {
		rec.Identity, rec.Role = x.identity, x.role.name
	}
	if !end {
		rec.Phase = audit.PhaseStart
		return rec
	}
	if rec.Status == 0 {
		rec.Status = x.w.status
	}
	if c := x.st.creds; c.active() {
		rec.Credentials, rec.Placeholders = x.usage.notes(c.vault)
		n := x.redactions.Load()
		if x.bodyRedactor != nil {
			n += int64(x.bodyRedactor.Count())
		}
		rec.Redactions = int(n)
	}
	rec.DLP = x.out.dlp
	rec.BytesIn = x.bytesIn.Load()
	rec.BytesOut = x.w.bytesOut + x.upgradedOut.Load()
	if !x.w.wroteAt.IsZero() {
		rec.TTFBMs = ms(x.w.wroteAt.Sub(x.start))
	}
	return rec
}

// responseRecorder counts what goes to the client, notes when the first byte
// went, and keeps a stalled client from pinning a stream forever: every write
// must complete within the idle timeout. It unwraps for
// http.ResponseController, so flushing and hijacking reach the real writer.
type responseRecorder struct {
	http.ResponseWriter
	rc       *http.ResponseController
	x        *exchange
	idle     time.Duration
	status   int
	wroteAt  time.Time
	bytesOut int64
	// flushOff turns flushing off for a body that is not a stream (see
	// Credentials.redactResponse).
	flushOff bool
}

func newResponseRecorder(w http.ResponseWriter, x *exchange, idle time.Duration) *responseRecorder {
	return &responseRecorder{ResponseWriter: w, rc: http.NewResponseController(w), x: x, idle: idle}
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		r.wroteAt = time.Now()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.idle > 0 {
		_ = r.rc.SetWriteDeadline(time.Now().Add(r.idle))
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytesOut += int64(n)
	if err != nil && r.x.clientErr == nil {
		r.x.clientErr = err
	}
	return n, err
}

func (r *responseRecorder) Flush() {
	if !r.flushOff {
		_ = r.rc.Flush()
	}
}

func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingBody counts request body bytes on their way upstream.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
