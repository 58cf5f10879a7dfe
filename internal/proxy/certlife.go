package proxy

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/slapenir/slapenir/internal/pki/reload"
)

// expiryCut ends a tunnel when the client certificate that opened it
// expires. Each request is checked against the certificate (guardConn
// identity), but a tunnel is one request that can last for hours, and a
// blind one is never seen again: without the cut, an agent whose
// certificate ran out, or was not renewed because it was withdrawn, keeps
// its way out for as long as it keeps the tunnel busy.
type expiryCut struct {
	timer *time.Timer
	cut   atomic.Bool
}

// cutAtExpiry closes conns (nil ones skipped) at the NotAfter of g's client
// certificate; nothing without mTLS. stop is to be deferred by the tunnel.
func cutAtExpiry(g *guardConn, conns ...net.Conn) *expiryCut {
	e := &expiryCut{}
	notAfter, _, ok := g.certificate()
	if !ok {
		return e
	}
	e.timer = time.AfterFunc(time.Until(notAfter), func() {
		e.cut.Store(true)
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	return e
}

// stop disarms the cut and, when it happened, says so in the tunnel's
// record: the tunnel ended because the certificate expired.
func (e *expiryCut) stop(x *exchange) {
	if e.timer == nil {
		return
	}
	e.timer.Stop()
	if e.cut.Load() {
		x.rec.Reason = reload.ReasonExpired
		x.rec.Error = "the tunnel was closed when the client certificate expired"
	}
}
