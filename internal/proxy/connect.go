package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/tunnel"
)

// takeTunnel takes one of the proxy's tunnel slots and one of the client's
// (max_tunnels, max_tunnels_per_identity of its role), or answers 503 when
// either is used up. release gives back what it took.
func (s *Server) takeTunnel(w http.ResponseWriter, x *exchange) (release func(), ok bool) {
	select {
	case s.tunnelSlots <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, x, http.StatusServiceUnavailable, fmt.Sprintf("proxy: too many open tunnels (limit %d); retry shortly", cap(s.tunnelSlots)), "tunnel_limit")
		return nil, false
	}
	who := x.who
	if !s.clientTunnels.take(who, x.role.maxTunnels) {
		<-s.tunnelSlots
		w.Header().Set("Retry-After", "1")
		writeError(w, x, http.StatusServiceUnavailable, fmt.Sprintf("proxy: this client already has %d tunnels open (max_tunnels_per_identity of role %s); close some or retry shortly", x.role.maxTunnels, x.role.name), "tunnel_limit")
		return nil, false
	}
	return func() { s.clientTunnels.give(who); <-s.tunnelSlots }, true
}

// dialTunnel connects a blind tunnel's upstream through the role's dialer,
// which checks the addresses the plan's host resolves to, and answers the
// agent when it cannot: 403 for an address the policy refuses, 502 for an
// upstream that does not answer.
func (s *Server) dialTunnel(w http.ResponseWriter, r *http.Request, x *exchange) (net.Conn, error) {
	c, err := x.role.dialer.Dial(r.Context(), "tcp", x.p.host, x.p.port)
	if err != nil {
		var refused *policy.RefusedError
		if errors.As(err, &refused) {
			writeError(w, x, http.StatusForbidden, refused.Error(), refused.Decision.Reason)
		} else {
			s.upstreamFailed(w, x, hostport.Join(x.p.host, x.p.port), err)
		}
		return nil, err
	}
	s.noteAddr(x, c)
	return c, nil
}

// serveConnect executes the plan of CONNECT host:port: a tunnel, opened
// when the policy (names, ports, then the resolved address) allows it. One
// audit record is written when the tunnel closes, with the bytes that
// crossed it.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request, x *exchange) {
	host, port := x.p.host, x.p.port
	if !s.decide(w, x) || !s.writeAhead(w, x) {
		return
	}
	release, ok := s.takeTunnel(w, x)
	if !ok {
		return
	}
	defer release()
	intercept := x.p.intercept
	var upConn net.Conn
	if !intercept {
		var err error
		if upConn, err = s.dialTunnel(w, r, x); err != nil {
			return
		}
	}

	clientConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if upConn != nil {
			upConn.Close()
		}
		writeError(w, x, http.StatusInternalServerError, "proxy: cannot take over the connection for a tunnel: "+err.Error(), "internal_error")
		return
	}
	// Known to Shutdown before the client learns the tunnel is open.
	tracked := upConn
	if tracked == nil {
		tracked = clientConn
	}
	s.tunnels.Add(clientConn, tracked)
	defer s.tunnels.Done(clientConn, tracked)
	cut := s.cutWhenInvalid(guardFrom(r.Context()), clientConn, upConn)
	defer s.stopCut(cut, x)
	x.out.status = http.StatusOK
	if _, err := clientConn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		clientConn.Close()
		if upConn != nil {
			upConn.Close()
		}
		x.out.err = "client went away before the tunnel opened"
		return
	}
	x.w.wroteAt = time.Now()
	if intercept {
		s.serveIntercepted(clientConn, brw.Reader, x, host, port, guardFrom(r.Context()))
		clientConn.Close()
		return
	}

	s.metrics.tunnels.Inc()
	defer s.metrics.tunnels.Dec()

	idle := s.cfg.Limits.IdleTimeout.D()
	// Bytes the client sent right behind its CONNECT (a TLS ClientHello, say)
	// are already in net/http's buffer; they go first.
	var toUp io.Reader = newIdleConn(clientConn, idle)
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		toUp = io.MultiReader(bytes.NewReader(early), toUp)
	}
	up := newIdleConn(upConn, idle)
	in, out := tunnel.Pipe(newIdleConn(clientConn, idle), toUp, up, up)
	x.bytesIn.Store(in)
	x.w.bytesOut = out
}
