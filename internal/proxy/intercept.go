package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/mitm"
)

// InterceptOptions turn on TLS interception: CONNECT tunnels to the hosts
// that need it are terminated with a leaf from Authority, so requests inside
// can be inspected, have credentials injected and secrets redacted. Other
// tunnels stay blind.
type InterceptOptions struct {
	Authority *mitm.Authority
	// Hosts are inspected although no credential needs them, besides the
	// configuration's intercept.hosts (which every reload reads anew).
	Hosts []hostport.Glob
	// UpstreamRoots verify upstream TLS; nil means the system roots.
	UpstreamRoots *x509.CertPool
}

// serveIntercepted terminates the agent's TLS inside an allowed CONNECT
// tunnel and serves the requests in it (HTTP/1.1 or HTTP/2, by ALPN) through
// the same pipeline as everything else, each with its own audit record. The
// SNI, when the client sends one, must name the CONNECT host: the tunnel's
// destination is the authority, never what the inner request claims.
func (s *Server) serveIntercepted(client net.Conn, buffered *bufio.Reader, x *exchange, host string, port int, g *guardConn) {
	x.allow("intercepted")
	var c net.Conn = client
	if n := buffered.Buffered(); n > 0 {
		early, _ := buffered.Peek(n)
		c = &prefixConn{Conn: client, r: io.MultiReader(strings.NewReader(string(early)), client)}
	}
	tc := tls.Server(c, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(hello.ServerName, "."), host) {
				return nil, fmt.Errorf("SNI %q does not match the CONNECT host %q", hello.ServerName, host)
			}
			return s.intercept.Authority.Leaf(host)
		},
	})
	_ = tc.SetDeadline(time.Now().Add(s.cfg.Limits.ReadHeaderTimeout.D()))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		x.refuseQuietly(0, decisionDeny, "intercept_handshake_failed", "TLS handshake with the agent failed: "+err.Error())
		return
	}
	_ = tc.SetDeadline(time.Time{})

	inner := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serveInner(w, r, g, host, port)
		}),
		ReadHeaderTimeout: s.cfg.Limits.ReadHeaderTimeout.D(),
		IdleTimeout:       s.cfg.Limits.IdleTimeout.D(),
		MaxHeaderBytes:    s.cfg.Limits.MaxHeaderBytes,
		HTTP2:             innerHTTP2(),
		ErrorLog:          s.http.ErrorLog,
	}
	s.trackInner(inner, true)
	defer s.trackInner(inner, false)
	ln := newOneConnListener(tc)
	inner.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			ln.Close()
		}
	}
	_ = inner.Serve(ln)
	ln.wait()
}

// trackInner keeps the servers inside intercepted tunnels known, so Shutdown
// can close their idle keep-alive connections as http.Server does its own.
func (s *Server) trackInner(srv *http.Server, open bool) {
	s.tunnelMu.Lock()
	defer s.tunnelMu.Unlock()
	if open {
		s.innerServers[srv] = struct{}{}
	} else {
		delete(s.innerServers, srv)
	}
}

// shutdownInner gracefully shuts the servers inside intercepted tunnels.
func (s *Server) shutdownInner(ctx context.Context) {
	s.tunnelMu.Lock()
	servers := make([]*http.Server, 0, len(s.innerServers))
	for srv := range s.innerServers {
		servers = append(servers, srv)
	}
	s.tunnelMu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Shutdown(ctx) }()
	}
	wg.Wait()
}

// serveInner handles one request from inside an intercepted tunnel. The
// agent's certificate is checked again for each request, as for every other
// request: a tunnel can outlive it.
func (s *Server) serveInner(w http.ResponseWriter, r *http.Request, g *guardConn, host string, port int) {
	x, r := s.open(w, r, g)
	defer s.close(x)
	// Planned first, so that even a refusal of the identity is recorded
	// with the tunnel's destination; nothing planned is acted on before
	// the identity passes.
	x.st.rules.planInto(&x.p, x.role, requestLine{way: modeIntercept, method: r.Method, url: r.URL, host: r.Host, tunnelHost: host, tunnelPort: port})
	identity, refused := g.identity(x.start)
	x.identity = identity
	if refused != nil {
		refuseIdentity(x, refused)
		return
	}
	if x.p.bad != nil {
		writeError(x.w, x, x.p.bad.status, x.p.bad.msg, x.p.bad.reason)
		return
	}
	if !s.admit(x.w, r, x) {
		return
	}
	s.forward(x.w, r, x)
}

// prefixConn replays bytes read ahead of a hijack before the connection's own.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// oneConnListener hands one connection to an http.Server and then blocks
// until that connection is done, so Serve returns when the tunnel closes.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	taken  bool
	mu     sync.Mutex
}

func newOneConnListener(c net.Conn) *oneConnListener {
	return &oneConnListener{conn: c, closed: make(chan struct{})}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.taken {
		l.taken = true
		l.mu.Unlock()
		return l.conn, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// wait returns once the served connection has closed.
func (l *oneConnListener) wait() { <-l.closed }

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// InterceptFromConfig builds the interception options: the CA from
// ca_cert/ca_key, or one created in stateDir, and the upstream roots (the
// system's plus upstream_ca). The inspected hosts (c.Hosts) are compiled
// with the rest of the configuration, by New and each Reload.
func InterceptFromConfig(c config.Intercept, stateDir string) (*InterceptOptions, error) {
	var ca *devca.CA
	var err error
	if c.CACert != "" {
		ca, err = devca.Open(c.CACert, c.CAKey)
	} else {
		ca, err = devca.EnsureAt(filepath.Join(stateDir, "intercept-ca"), "SLAPENIR interception CA")
	}
	if err != nil {
		return nil, fmt.Errorf("proxy: interception CA: %w", err)
	}
	o := &InterceptOptions{Authority: mitm.New(ca)}
	if len(c.UpstreamCA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range c.UpstreamCA {
			certs, err := certfile.ReadCerts(f)
			if err != nil {
				return nil, fmt.Errorf("proxy: intercept.upstream_ca: %w", err)
			}
			for _, crt := range certs {
				pool.AddCert(crt)
			}
		}
		o.UpstreamRoots = pool
	}
	return o, nil
}
