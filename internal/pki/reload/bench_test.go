package reload_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

// BenchmarkMTLSHandshake is one full TLS 1.3 handshake with a client
// certificate on loopback, certificates served by reloaders (checked at the
// default interval), plus VerifyClient on the server side.
func BenchmarkMTLSHandshake(b *testing.B) {
	ca, err := devca.Ensure(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	serverDir, clientDir := certfile.Dir(b.TempDir()), certfile.Dir(b.TempDir())
	if _, err := ca.IssueTo(serverDir, devca.Request{CommonName: "127.0.0.1", Usage: devca.Server}); err != nil {
		b.Fatal(err)
	}
	if _, err := ca.IssueTo(clientDir, devca.Request{CommonName: "agent-1"}); err != nil {
		b.Fatal(err)
	}
	skp, _ := reload.NewKeyPair(serverDir.Cert(), serverDir.Key())
	ckp, _ := reload.NewKeyPair(clientDir.Cert(), clientDir.Key())
	pool, _ := reload.NewCAPool(ca.RootFile())
	l, err := tls.Listen("tcp", "127.0.0.1:0", reload.ServerConfig(skp))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() != nil {
					return
				}
				st := tc.ConnectionState()
				if _, err := reload.VerifyClient(&st, pool, []string{"agent-*"}, time.Now()); err != nil {
					return
				}
				tc.Write([]byte{1})
			}()
		}
	}()
	cfg := reload.ClientConfig(ckp, pool, "127.0.0.1")
	buf := make([]byte, 1)
	b.ResetTimer()
	for range b.N {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatalf("server refused the client: %v", err)
		}
		c.Close()
	}
}

// agentState is what a handshake leaves for the server to verify: a client
// certificate for agent-1 from a new development CA, and that CA's pool.
func agentState(b *testing.B) (*tls.ConnectionState, *reload.CAPool) {
	b.Helper()
	ca, err := devca.Ensure(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := ca.Issue(devca.Request{CommonName: "agent-1"})
	if err != nil {
		b.Fatal(err)
	}
	pool, err := reload.NewCAPool(ca.RootFile())
	if err != nil {
		b.Fatal(err)
	}
	return &tls.ConnectionState{PeerCertificates: bundle.Chain}, pool
}

// BenchmarkVerifyClient is the per-request cost of checking a client
// certificate against the current pool and the allowed globs.
func BenchmarkVerifyClient(b *testing.B) {
	st, pool := agentState(b)
	allowed := []string{"relay", "agent-*"}
	b.ResetTimer()
	for range b.N {
		if _, err := reload.VerifyClient(st, pool, allowed, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierCached is the same check through Verifier, as the proxy
// runs it on every request of a keep-alive connection.
func BenchmarkVerifierCached(b *testing.B) {
	st, pool := agentState(b)
	v := reload.NewVerifier(pool, []string{"relay", "agent-*"})
	b.ResetTimer()
	for range b.N {
		if _, err := v.Verify(st, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
