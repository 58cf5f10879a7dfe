package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/slapenir/slapenir/internal/pki/reload"
)

// TLSOptions turn on mTLS. The handshake only asks for a client certificate;
// it is checked afterwards against the current CA pool, so a client with none
// or a bad one still completes the handshake, can read /health, and gets a
// refusal it can understand (and that is audited) for everything else.
type TLSOptions struct {
	// KeyPair is the proxy's own certificate, followed on disk when renewed.
	KeyPair *reload.KeyPair
	// ClientCA is the pool client certificates must chain to, also followed.
	ClientCA *reload.CAPool
	// AllowedIdentities are globs over the certificate's CN and SANs.
	AllowedIdentities []string
}

func (o *TLSOptions) serverConfig() *tls.Config {
	c := reload.ServerConfig(o.KeyPair)
	// The guard sits between TLS and HTTP, so this port speaks HTTP/1.1.
	c.NextProtos = []string{"http/1.1"}
	return c
}

// tlsState is a guard connection's TLS side: the handshake, done on the
// first read, and what the client certificate proved.
type tlsState struct {
	conn     *tls.Conn
	verifier *reload.Verifier
	done     bool
	peer     reload.Peer
	refused  *reload.Refused
	// role is the agent's role under one configuration, worked out on the
	// connection's first request under it; expiryNoted says the
	// certificate's expiry went to the metrics. Both save every request
	// after the first the glob matching and a shared lock.
	role        atomic.Pointer[roleMemo]
	expiryNoted atomic.Bool
}

type roleMemo struct {
	st *state
	r  *role
}

// roleIn is the role of g's agent in st.
func (g *guardConn) roleIn(st *state) *role {
	if g == nil || g.tls == nil {
		return st.explain.roleFor(nil)
	}
	if m := g.tls.role.Load(); m != nil && m.st == st {
		return m.r
	}
	r := st.explain.roleFor(g.names())
	g.tls.role.Store(&roleMemo{st, r})
	return r
}

// handshake runs the TLS handshake and checks the client certificate. A
// failed handshake is answered (in plain HTTP when the client spoke plain
// HTTP) and reported; the connection is then dead.
func (g *guardConn) handshake() error {
	t := g.tls
	t.done = true
	if err := t.conn.Handshake(); err != nil {
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]) {
			body := errorBody("this port speaks TLS and wants a client certificate: use https:// with the agent's certificate (cert.pem, key.pem) and trust the proxy's CA (root_ca.pem); or go through the agent's relay at http://127.0.0.1:3128", "tls_required", "")
			reply := "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
			_ = rhe.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = rhe.Conn.Write([]byte(reply))
			g.onTLSFailure(g, "tls_required", "plain HTTP sent to the TLS port")
		} else {
			g.onTLSFailure(g, "tls_handshake_failed", "TLS handshake failed: "+err.Error())
		}
		g.mu.Lock()
		g.dead = true
		g.mu.Unlock()
		return err
	}
	state := t.conn.ConnectionState()
	peer, err := t.verifier.Verify(&state, time.Now())
	if err != nil {
		var r *reload.Refused
		if !errors.As(err, &r) {
			r = &reload.Refused{Reason: reload.ReasonInvalid, Err: err}
		}
		t.refused = r
		return nil
	}
	t.peer = peer
	return nil
}

// identity is the verified client's name, or the reason it has none. A
// certificate that expires while its connection is open stops counting.
func (g *guardConn) identity(now time.Time) (string, *reload.Refused) {
	if g == nil || g.tls == nil {
		return "", nil
	}
	t := g.tls
	if t.refused != nil {
		return "", t.refused
	}
	if now.After(t.peer.Leaf.NotAfter) {
		return "", &reload.Refused{Reason: reload.ReasonExpired, Identities: t.peer.Identities, Err: errors.New("the client certificate expired during the connection")}
	}
	return t.peer.Identities[0], nil
}

// names are the common name and SANs of the connection's client
// certificate, which select the agent's role; nil without one.
func (g *guardConn) names() []string {
	if g == nil || g.tls == nil || g.tls.refused != nil {
		return nil
	}
	return g.tls.peer.Identities
}

// certificate is the client certificate's expiry and the identity it
// names, when the connection has a valid one.
func (g *guardConn) certificate() (time.Time, string, bool) {
	if g == nil || g.tls == nil || g.tls.refused != nil || g.tls.peer.Leaf == nil || len(g.tls.peer.Identities) == 0 {
		return time.Time{}, "", false
	}
	return g.tls.peer.Leaf.NotAfter, g.tls.peer.Identities[0], true
}

// looksLikeHTTP tells a plain HTTP request line from a TLS record header.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET ", "POST", "PUT ", "HEAD", "CONN", "DELE", "OPTI", "PATC", "TRAC"} {
		if bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}
