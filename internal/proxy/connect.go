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

// serveConnect executes the plan of CONNECT host:port: a tunnel, opened
// when the policy (names, ports, then the resolved address) allows it. One
// audit record is written when the tunnel closes, with the bytes that
// crossed it.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request, x *exchange) {
	host, port := x.p.host, x.p.port
	if !s.decide(w, x) || !s.writeAhead(w, x) {
		return
	}
	select {
	case s.tunnelSlots <- struct{}{}:
		defer func() { <-s.tunnelSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, x, http.StatusServiceUnavailable, fmt.Sprintf("proxy: too many open tunnels (limit %d); retry shortly", cap(s.tunnelSlots)), "tunnel_limit")
		return
	}
	who := x.who
	if !s.clientTunnels.take(who, x.role.maxTunnels) {
		w.Header().Set("Retry-After", "1")
		writeError(w, x, http.StatusServiceUnavailable, fmt.Sprintf("proxy: this client already has %d tunnels open (max_tunnels_per_identity of role %s); close some or retry shortly", x.role.maxTunnels, x.role.name), "tunnel_limit")
		return
	}
	defer s.clientTunnels.give(who)

	intercept := x.p.intercept
	var upConn net.Conn
	if !intercept {
		var err error
		upConn, err = x.role.dialer.Dial(r.Context(), "tcp", host, port)
		if err != nil {
			var refused *policy.RefusedError
			if errors.As(err, &refused) {
				writeError(w, x, http.StatusForbidden, refused.Error(), refused.Decision.Reason)
				return
			}
			s.upstreamFailed(w, x, hostport.Join(host, port), err)
			return
		}
		s.noteAddr(x, upConn)
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
