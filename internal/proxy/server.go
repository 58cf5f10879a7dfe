package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/tunnel"
)

// Options wires a Server to what it needs. Config and Audit are required.
type Options struct {
	Config *config.Config
	Audit  *audit.Logger
	// Log receives operational messages (never secrets); nil discards them.
	Log *slog.Logger
	// AuditFile is where Audit writes, if to a file: the proxy stops taking
	// requests shortly before its file system is full.
	AuditFile string
	// Registry receives the proxy's metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Resolver resolves upstream names; nil uses the system resolver.
	Resolver *net.Resolver
	// TLS turns on mTLS; nil serves plain HTTP (--insecure-plaintext).
	TLS *TLSOptions
	// Intercept turns on TLS interception; nil keeps every tunnel blind.
	Intercept *InterceptOptions
	// Credentials turns on placeholder injection and secret redaction.
	Credentials *Credentials
}

// Server is the proxy. Create it with New, run it with Serve, stop it with
// Shutdown.
type Server struct {
	// cfg is the configuration the server started with: what a reload
	// cannot change (listen, tls, audit, timeouts, max_tunnels) is read
	// from it; everything a reload changes is in the current state.
	cfg      *config.Config
	cur      atomic.Pointer[state]
	resolver *net.Resolver
	audit    *audit.Logger
	log      *slog.Logger
	metrics  *metrics
	started  time.Time
	disk     *diskGuard
	tls      *TLSOptions
	// verifier checks client certificates, caching successes: an agent
	// opening many connections pays for one chain verification.
	verifier  *reload.Verifier
	intercept *InterceptOptions
	// unavailable thins out the records of audit_unavailable refusals.
	unavailable sampler
	// cutting is set when Shutdown's grace has run out and it cuts what
	// is still open, so those records say so.
	cutting atomic.Bool

	// live are the states still in use (the current one and replaced ones
	// with requests in flight), whose secrets are scrubbed from the log.
	liveMu sync.Mutex
	live   map[*state]struct{}
	// limiters are the roles' token buckets, kept across reloads.
	limitersMu sync.Mutex
	limiters   map[string]*rateLimiter
	// reloadMu serialises reloads.
	reloadMu sync.Mutex

	http *http.Server

	tunnelSlots chan struct{}
	// tunnels are the open CONNECT tunnels, which Shutdown waits for and
	// then cuts.
	tunnels tunnel.Registry
	// tunnelMu guards innerServers.
	tunnelMu sync.Mutex
	// clientTunnels counts open tunnels per client, clientRequests the
	// requests in flight; a reload resets neither, as it ends none.
	clientTunnels, clientRequests clientCounts
	// dials bounds each client's upstream connections being opened.
	dials dialGate
	// certTunnels are the open tunnels a client certificate's end cuts.
	certTunnels certTunnels
	// innerServers serve the requests inside intercepted tunnels.
	innerServers map[*http.Server]struct{}
	// decoding bounds the memory of response decoders, which a reload
	// does not reset: it is the process's.
	decoding *decodeBudget
}

// New builds a proxy from its configuration.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Audit == nil {
		return nil, errors.New("proxy: Config and Audit are required")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	lim := o.Config.Limits
	s := &Server{
		cfg:          o.Config,
		resolver:     o.Resolver,
		audit:        o.Audit,
		log:          log,
		metrics:      newMetrics(reg),
		started:      time.Now(),
		tls:          o.TLS,
		disk:         newDiskGuard(o.AuditFile, o.Audit.Written),
		intercept:    o.Intercept,
		live:         map[*state]struct{}{},
		limiters:     map[string]*rateLimiter{},
		tunnelSlots:  make(chan struct{}, max(lim.MaxTunnels, 1)),
		innerServers: map[*http.Server]struct{}{},
		decoding:     newDecodeBudget(decodeMemory, decodeMemoryPerClient),
	}
	if o.TLS != nil {
		s.verifier = reload.NewVerifier(o.TLS.ClientCA, o.TLS.AllowedIdentities)
	}
	st, err := s.newState(o.Config, o.Credentials)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s.live[st] = struct{}{}
	s.cur.Store(st)
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		// No ReadTimeout or WriteTimeout: a local LLM may think for a minute
		// before its first byte and then stream for ten. Stalls are caught by
		// idle deadlines on both sides instead.
		IdleTimeout:    lim.IdleTimeout.D(),
		MaxHeaderBytes: lim.MaxHeaderBytes,
		ErrorLog:       s.errorLog(),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if g, ok := c.(*guardConn); ok {
				return context.WithValue(ctx, guardKey{}, g)
			}
			return ctx
		},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It returns
// http.ErrServerClosed after a clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	gl := guardListener{Listener: ln, onReject: s.auditRejection, onTLSFailure: s.auditTLSFailure}
	if s.tls != nil {
		gl.tlsConfig = s.tls.serverConfig()
		gl.verifier = s.verifier
	}
	return s.http.Serve(gl)
}

// Shutdown stops accepting, lets in-flight requests and tunnels finish until
// ctx ends, then cuts what is left. The audit log is the caller's to close,
// after Shutdown returns, so the last records are not lost.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.shutdownInner(ctx)
	// Tunnels are hijacked connections, which http.Server.Shutdown does not
	// wait for: poll until they are gone, as it does for its own.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.tunnels.Open() > 0 {
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		s.cutting.Store(true)
		s.tunnels.Cut()
		break
	}
	if err != nil {
		// In-flight HTTP requests outlived the grace period: cut them.
		s.cutting.Store(true)
		_ = s.http.Close()
	}
	// The last configuration closes like a replaced one, once whatever
	// still holds it (a request cut just now) is done.
	s.cur.Load().retire()
	return err
}

// guardListener wraps each accepted connection in a guardConn, over TLS on
// the mTLS port (the handshake happens on the connection's first read, not
// in Accept, so a slow client cannot stall the accept loop).
type guardListener struct {
	net.Listener
	onReject     func(g *guardConn, status int, detail string, head []byte)
	onTLSFailure func(g *guardConn, reason, detail string)
	tlsConfig    *tls.Config
	verifier     *reload.Verifier
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &guardConn{Conn: c, onReject: l.onReject, onTLSFailure: l.onTLSFailure}
	if l.tlsConfig != nil {
		tc := tls.Server(c, l.tlsConfig)
		g.Conn = tc
		g.tls = &tlsState{conn: tc, verifier: l.verifier}
	}
	return g, nil
}

// errorLog is net/http's and ReverseProxy's error log: their messages (a
// broken copy, a handler's panic) can quote bytes an upstream sent, so they
// are scrubbed of real values before they reach the proxy's log.
func (s *Server) errorLog() *log.Logger {
	return log.New(errorLogWriter{s}, "", 0)
}

type errorLogWriter struct{ s *Server }

func (w errorLogWriter) Write(p []byte) (int, error) {
	w.s.log.Debug(w.s.scrub(strings.TrimSuffix(string(p), "\n")))
	return len(p), nil
}
