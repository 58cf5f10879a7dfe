package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/dlp"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/safetext"
)

// targetHeader routes an origin-form request (the seed's Ollama path).
const targetHeader = "X-Target-URL"

// upstream is where an allowed request goes.
type upstream struct {
	url  *url.URL // scheme, host:port, path and query to send
	host string   // the Host header to send
	// destHost and destPort are the destination credentials are bound to:
	// the target URL's or the CONNECT authority's, never a Host header.
	destHost string
	destPort int
}

func joinQuery(p, q string) string {
	if q == "" {
		return p
	}
	return p + "?" + q
}

// forward executes the plan of a forward, X-Target-URL or intercepted
// request: refuses it as planned, scans it, records it ahead and, when all
// of that lets it go, proxies it upstream.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	up := x.p.up
	if !s.decide(w, x) || !s.outbound(w, r, x) || !s.writeAhead(w, x) {
		return
	}
	// An upstream that answers as soon as it has the body's last byte
	// (Ollama does) would otherwise race net/http, which closes the request
	// body when the response head is written while the transport may still
	// be reading its EOF: the stream would be cut. Not every writer supports
	// it (HTTP/2 is full duplex already).
	_ = http.NewResponseController(w).EnableFullDuplex()
	ctx := s.dials.track(r.Context(), x, up.url.Scheme == "https")
	if x.role.policy.ReportMode() {
		// Only report mode lets a refused address through, to be noted on
		// whichever connection (new or pooled) the request gets.
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { s.noteAddr(x, info.Conn) },
		})
	}
	x.role.reverse.ServeHTTP(w, r.WithContext(ctx))
}

// decide applies the plan's name-level decision (by host for a tunnel, by
// method and path too for a request) and answers a refusal. The
// address-level check happens when the upstream is dialled; the caller
// records the request (writeAhead) once every check before sending passed.
func (s *Server) decide(w http.ResponseWriter, x *exchange) bool {
	d := x.p.decision
	if d.Report {
		x.report(d.Reason)
	} else {
		x.allow(d.Reason)
	}
	if !d.Allow {
		writeError(w, x, http.StatusForbidden, refusalMessage(x.method, &x.p), d.Reason)
		return false
	}
	return true
}

// refusalMessage says why the policy refused plan p of a request sent
// with method.
func refusalMessage(method string, p *plan) string {
	d := p.decision
	where := hostport.Join(p.host, p.port)
	what := "egress to " + where
	if d.Reason == policy.ReasonMethodDenied || d.Reason == policy.ReasonPathDenied {
		// The rule named methods and paths: say which of the request's.
		what = fmt.Sprintf("%s %s on %s", safetext.Cut(method, 20), p.path, where)
	}
	msg := fmt.Sprintf("%s denied by policy (%s", what, d.Reason)
	if d.Rule != "" {
		msg += ": " + d.Rule
	}
	return msg + ")"
}

// noteAddr checks the address a request actually used. In enforce mode the
// dialer has already refused private addresses; in report mode this is where
// a would-be refusal is noted, also for pooled connections that were not
// dialled for this request.
func (s *Server) noteAddr(x *exchange, c net.Conn) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return
	}
	if d := x.role.policy.CheckAddr(x.p.host, ap.Addr().Unmap(), int(ap.Port())); d.Report {
		x.report(d.Reason)
	}
}

// newTransport is the upstream transport of role r, dialling through its
// dialer.
func (s *Server) newTransport(r *role) *http.Transport {
	idle := s.cfg.Limits.IdleTimeout.D()
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.intercept != nil {
		tlsConfig.RootCAs = s.intercept.UpstreamRoots
	}
	return &http.Transport{
		TLSClientConfig: tlsConfig,
		// Never chain through the proxy's own HTTP_PROXY environment.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := s.dials.dial(ctx, addr, func() (net.Conn, error) {
				// The destination as the plan parsed it, when the dial is
				// for it (addr is the plan's hostport.Join): not parsed again.
				if x := exchangeFrom(ctx); x != nil && x.p.up != nil && x.p.up.url.Host == addr {
					return r.dialer.Dial(ctx, network, x.p.host, x.p.port)
				}
				return r.dialer.DialContext(ctx, network, addr)
			})
			if err != nil {
				return nil, err
			}
			return newIdleConn(c, idle), nil
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 15 * time.Second,
		// A proxy passes encodings through untouched; it must not ask for
		// gzip on the client's behalf and then unpack it.
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		// No ResponseHeaderTimeout: Ollama sends no headers until its first
		// token, which can take a minute.
	}
}

var bufferPool = &bytePool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bytePool) Put(p []byte) { b.p.Put(&p) }

// newReverseProxy serves role r's requests with the credentials of st.
func (s *Server) newReverseProxy(st *state, r *role) *httputil.ReverseProxy {
	creds := st.creds
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			x := exchangeFrom(pr.In.Context())
			up := x.p.up
			pr.Out.URL = up.url
			pr.Out.Host = up.host
			pr.Out.Header.Del(targetHeader)
			if creds.active() {
				// Ask for what the redactor can read without unpacking.
				pr.Out.Header.Set("Accept-Encoding", "identity")
				creds.injectRequest(pr.Out, &x.p, &x.usage)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			x := exchangeFrom(resp.Request.Context())
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return s.upgraded(resp, x)
			}
			resp.Body = upstreamBody{ReadCloser: resp.Body, x: x}
			if !creds.active() {
				return nil
			}
			return creds.redactResponse(resp, x, s.decoding)
		},
		Transport: scrub1xx{next: r.transport, creds: creds},
		// Responses of unknown length (chunked NDJSON, SSE — and every body
		// the redactor rewrites) are flushed write by write; ReverseProxy
		// does that by itself. A body of known length is not a stream and
		// goes out in full buffers.
		FlushInterval: 0,
		BufferPool:    bufferPool,
		ErrorHandler:  s.upstreamError,
		// Copy errors mid-stream are already in the audit record.
		ErrorLog: s.errorLog(),
	}
}

// upstreamError answers a request whose upstream could not be reached or
// answered badly: 403 for an address the policy refused at dial time, 502
// naming the target and the cause otherwise.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeFrom(r.Context())
	var refused *policy.RefusedError
	var f *dlp.Finding
	switch {
	case errors.As(err, &refused):
		writeError(w, x, http.StatusForbidden, refused.Error(), refused.Decision.Reason)
	case errors.As(err, &f):
		writeError(w, x, http.StatusForbidden, fmt.Sprintf("proxy: the request body carries secret-shaped data (dlp rule %s); it was cut there and refused by the dlp of role %s", f.Rule, x.role.name), "dlp_"+f.Rule)
	case errors.Is(err, errUnscannableUpgrade):
		writeError(w, x, http.StatusBadGateway, "proxy: "+err.Error(), "unscannable_upgrade")
	case errors.As(err, new(errUnknownEncoding)):
		writeError(w, x, http.StatusBadGateway, "proxy: "+err.Error(), "unknown_encoding")
	case errors.As(err, new(*decodeLimitError)):
		writeError(w, x, http.StatusBadGateway, "proxy: "+x.st.creds.scrub(err.Error()), reasonDecodeLimit)
	case errors.As(err, new(errDecodeBusy)):
		w.Header().Set("Retry-After", "1")
		writeError(w, x, http.StatusServiceUnavailable, "proxy: "+err.Error(), "decompression_busy")
	case r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
		x.refuseQuietly(499, decisionError, "client_closed", "client closed the request before the upstream answered")
	default:
		s.upstreamFailed(w, x, x.p.up.url.Scheme+"://"+x.p.up.url.Host, err)
	}
}

// upstreamFailed answers 502 for an upstream (target) that could not be
// reached or answered badly, naming it and the cause, and counts the
// failure by kind of host.
func (s *Server) upstreamFailed(w http.ResponseWriter, x *exchange, target string, err error) {
	s.metrics.upstreamErrors.WithLabelValues(hostClass(x), failureKind(err)).Inc()
	// The cause can quote what the upstream sent.
	writeError(w, x, http.StatusBadGateway, x.st.creds.scrub(fmt.Sprintf("proxy: upstream %s failed: %v", target, safetext.URLError(err))), "upstream_failed")
}

// hostClass is a bounded name for where a request went, for metrics that
// must not be labelled by host: a credential's host, a private one (an IP
// literal in a private range, or a name private_allow names), or public.
func hostClass(x *exchange) string {
	if x.p.forCredential() {
		return "credential"
	}
	host := x.p.host
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()) || x.role.policy.NamesPrivate(host) {
		return "private"
	}
	return "public"
}

// failureKind sorts an upstream failure into a few kinds.
func failureKind(err error) string {
	var dns *net.DNSError
	var ne net.Error
	var cert *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return "dns"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "reset"
	case errors.As(err, &cert), errors.As(err, &rec):
		return "tls"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}
