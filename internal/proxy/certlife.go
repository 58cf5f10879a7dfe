package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slapenir/slapenir/internal/pki/reload"
)

// certCut ends a tunnel when the client certificate that opened it stops
// being valid: at its NotAfter, or when the client CA is reloaded with one
// that no longer vouches for it (a CA rotation, the way certificates are
// revoked here). Each request is checked against the certificate (guardConn
// identity), but a tunnel is one request that can last for hours, and a
// blind one is never seen again: without the cut, an agent whose
// certificate ran out, or was withdrawn, keeps its way out for as long as
// it keeps the tunnel busy.
type certCut struct {
	g     *guardConn
	conns []net.Conn
	timer *time.Timer
	once  sync.Once
	// refused is why the tunnel was cut; nil while it was not.
	refused atomic.Pointer[reload.Refused]
}

// clientCAWatch is how often the open tunnels' certificates are checked
// against the client CA pool (which reloads its file when it changed).
const clientCAWatch = time.Second

// certTunnels are the tunnels with a client certificate, which a reloaded
// client CA may end.
type certTunnels struct {
	mu   sync.Mutex
	open map[*certCut]struct{}
	// watching says the goroutine that checks them runs: only while
	// there are some, so a proxy without tunnels runs none.
	watching bool
}

// cutWhenInvalid closes conns (nil ones skipped) when g's client certificate
// expires or a reloaded client CA no longer trusts it; nothing without mTLS.
// stopCut is to be deferred by the tunnel.
func (s *Server) cutWhenInvalid(g *guardConn, conns ...net.Conn) *certCut {
	c := &certCut{g: g, conns: conns}
	notAfter, _, ok := g.certificate()
	if !ok {
		return c
	}
	c.timer = time.AfterFunc(time.Until(notAfter), func() {
		c.cut(&reload.Refused{Reason: reload.ReasonExpired})
	})
	s.certTunnels.mu.Lock()
	defer s.certTunnels.mu.Unlock()
	if s.certTunnels.open == nil {
		s.certTunnels.open = map[*certCut]struct{}{}
	}
	s.certTunnels.open[c] = struct{}{}
	if !s.certTunnels.watching {
		s.certTunnels.watching = true
		go s.watchClientCA()
	}
	return c
}

// watchClientCA rechecks the open tunnels' certificates every
// clientCAWatch until none is left.
func (s *Server) watchClientCA() {
	tick := time.NewTicker(clientCAWatch)
	defer tick.Stop()
	for range tick.C {
		s.recheckTunnels()
		s.certTunnels.mu.Lock()
		if len(s.certTunnels.open) == 0 {
			s.certTunnels.watching = false
			s.certTunnels.mu.Unlock()
			return
		}
		s.certTunnels.mu.Unlock()
	}
}

// recheckTunnels cuts the tunnels whose certificate the client CA, as it
// is now, no longer trusts. While the pool is the one each was verified
// against, a check is a pointer comparison.
func (s *Server) recheckTunnels() {
	s.certTunnels.mu.Lock()
	open := make([]*certCut, 0, len(s.certTunnels.open))
	for c := range s.certTunnels.open {
		open = append(open, c)
	}
	s.certTunnels.mu.Unlock()
	now := time.Now()
	for _, c := range open {
		if _, refused := c.g.identity(now); refused != nil {
			c.cut(refused)
		}
	}
}

// cut closes the tunnel's connections once, noting why.
func (c *certCut) cut(why *reload.Refused) {
	c.once.Do(func() {
		c.refused.Store(why)
		for _, conn := range c.conns {
			if conn != nil {
				conn.Close()
			}
		}
	})
}

// stopCut disarms c, forgets its tunnel and, when it was cut, says so in
// the tunnel's record; deferred by the tunnel.
func (s *Server) stopCut(c *certCut, x *exchange) {
	if c.timer == nil {
		return
	}
	c.timer.Stop()
	s.certTunnels.mu.Lock()
	delete(s.certTunnels.open, c)
	s.certTunnels.mu.Unlock()
	why := c.refused.Load()
	if why == nil {
		return
	}
	x.out.reason = why.Reason
	switch why.Reason {
	case reload.ReasonExpired:
		x.out.err = "the tunnel was closed when the client certificate expired"
	default:
		x.out.err = "the tunnel was closed when the client CA was reloaded and no longer trusts the client certificate (" + why.Reason + ")"
	}
}
