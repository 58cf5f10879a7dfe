package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
	// trust is whether the client CA pool, as it was last seen, vouches
	// for the certificate: every request re-verifies it when the pool is a
	// new one (the CA file was reloaded), so a CA rotation reaches
	// kept-alive connections and tunnels, and costs one pointer comparison
	// while the pool stays.
	trust atomic.Pointer[trustMemo]
}

type trustMemo struct {
	pool    *x509.CertPool
	refused *reload.Refused // nil: trusted
}

type roleMemo struct {
	st *state
	r  *role
}

// roleIn is the role of g's agent in st.
func (g *guardConn) roleIn(st *state) *role {
	if g == nil || g.tls == nil {
		return st.rules.roleFor(nil)
	}
	if m := g.tls.role.Load(); m != nil && m.st == st {
		return m.r
	}
	r := st.rules.roleFor(g.names())
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
	pool := t.verifier.Pool()
	peer, err := t.verifier.VerifyIn(pool, &state, time.Now())
	if err != nil {
		var r *reload.Refused
		if !errors.As(err, &r) {
			r = &reload.Refused{Reason: reload.ReasonInvalid, Err: err}
		}
		t.refused = r
		return nil
	}
	t.peer = peer
	t.trust.Store(&trustMemo{pool: pool})
	return nil
}

// trusted re-verifies the accepted certificate's chain when the client CA
// pool has changed since it was last verified; nil while the pool trusts
// it. The refusal names certificate_untrusted: the certificate was good
// when the connection opened, and the CA the operator put in place since
// does not vouch for it.
func (t *tlsState) trusted(now time.Time) *reload.Refused {
	pool := t.verifier.Pool()
	if m := t.trust.Load(); m != nil && m.pool == pool {
		return m.refused
	}
	state := t.conn.ConnectionState()
	var refused *reload.Refused
	if _, err := t.verifier.VerifyIn(pool, &state, now); err != nil {
		refused = &reload.Refused{Reason: reload.ReasonUntrusted, Identities: t.peer.Identities, Err: fmt.Errorf("the client CA was reloaded and no longer vouches for it: %w", err)}
		var r *reload.Refused
		if errors.As(err, &r) && (r.Reason == reload.ReasonExpired || r.Reason == reload.ReasonNotYetValid) {
			refused = r
		}
	}
	t.trust.Store(&trustMemo{pool: pool, refused: refused})
	return refused
}

// identity is the verified client's name, or the reason it has none. A
// certificate that expires while its connection is open, or that a
// reloaded client CA no longer trusts, stops counting.
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
	if refused := t.trusted(now); refused != nil {
		return "", refused
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
