package pki_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

// The renewal scenario with step-ca's own 5-minute certificates: a
// server and a client enrolled from the real CA, both renewed at /renew; the
// server then serves its renewed certificate and the client presents its
// renewed one on the next handshake, while a connection opened before the
// renewals keeps working. Nothing is restarted.
func TestStepCARenewalsPickedUpWithoutRestart(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	ctx := context.Background()
	enrollDir := func(subject string, sans ...string) certfile.Dir {
		dir := certfile.Dir(t.TempDir())
		b := enroll.Bootstrap{CAURL: ca.URL, Token: ca.Token(subject, "", time.Time{}, sans...), Dir: dir, Timeout: 10 * time.Second}
		if _, err := b.Run(ctx); err != nil {
			t.Fatalf("bootstrap %s: %v", subject, err)
		}
		return dir
	}
	serverDir := enrollDir("proxy", "127.0.0.1", "proxy")
	clientDir := enrollDir("agent-1")

	serverKP, err := reload.NewKeyPair(serverDir.Cert(), serverDir.Key())
	if err != nil {
		t.Fatal(err)
	}
	clientCAs, err := reload.NewCAPool(serverDir.Root())
	if err != nil {
		t.Fatal(err)
	}
	clientKP, err := reload.NewKeyPair(clientDir.Cert(), clientDir.Key())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := reload.NewCAPool(clientDir.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, kp := range []*reload.KeyPair{serverKP, clientKP} {
		kp.SetInterval(0, t.Logf)
	}
	addr := serveSerials(t, serverKP, clientCAs)
	clientCfg := reload.ClientConfig(clientKP, roots, "127.0.0.1")

	old := dialLine(t, addr, clientCfg)
	oldClientSerial := old.ask(t)
	oldServerSerial := old.ConnectionState().PeerCertificates[0].SerialNumber.String()

	for _, dir := range []certfile.Dir{serverDir, clientDir} {
		if _, err := (&enroll.Renewer{CAURL: ca.URL, Dir: dir}).RenewNow(ctx); err != nil {
			t.Fatalf("renew %s: %v", dir, err)
		}
	}
	st, _ := enroll.Load(clientDir)
	newClientSerial := st.Leaf().SerialNumber.String()
	st, _ = enroll.Load(serverDir)
	newServerSerial := st.Leaf().SerialNumber.String()

	fresh := dialLine(t, addr, clientCfg)
	if got := fresh.ConnectionState().PeerCertificates[0].SerialNumber.String(); got != newServerSerial || got == oldServerSerial {
		t.Errorf("new handshake: server presented serial %s, want the renewed %s", got, newServerSerial)
	}
	if got := fresh.ask(t); got != "ok "+newClientSerial || got == oldClientSerial {
		t.Errorf("new handshake: server saw client %q, want the renewed serial %s", got, newClientSerial)
	}
	if got := old.ask(t); got != oldClientSerial {
		t.Errorf("connection opened before the renewals answered %q, want %q", got, oldClientSerial)
	}
}

// serveSerials answers each line with "ok <client serial>" or "refused <reason>".
func serveSerials(t *testing.T, kp *reload.KeyPair, pool *reload.CAPool) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", reload.ServerConfig(kp))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					st := c.(*tls.Conn).ConnectionState()
					peer, err := reload.VerifyClient(&st, pool, []string{"agent-*"}, time.Now())
					if err != nil {
						fmt.Fprintf(c, "refused %s\n", err.(*reload.Refused).Reason)
						continue
					}
					fmt.Fprintf(c, "ok %s\n", peer.Leaf.SerialNumber)
				}
			}()
		}
	}()
	return l.Addr().String()
}

type lineConn struct {
	*tls.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string, cfg *tls.Config) *lineConn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

func (c *lineConn) ask(t *testing.T) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, "?"); err != nil {
		t.Fatal(err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}
