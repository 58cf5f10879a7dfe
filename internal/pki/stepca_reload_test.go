package pki_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
	"github.com/slapenir/slapenir/internal/testutil/tlsline"
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

	old := tlsline.Dial(t, addr, clientCfg)
	oldClientSerial := old.Ask(t)
	oldServerSerial := old.ServerSerial()

	for _, dir := range []certfile.Dir{serverDir, clientDir} {
		if _, err := (&enroll.Renewer{CAURL: ca.URL, Dir: dir}).RenewNow(ctx); err != nil {
			t.Fatalf("renew %s: %v", dir, err)
		}
	}
	st, _ := enroll.Load(clientDir)
	newClientSerial := st.Leaf().SerialNumber.String()
	st, _ = enroll.Load(serverDir)
	newServerSerial := st.Leaf().SerialNumber.String()

	fresh := tlsline.Dial(t, addr, clientCfg)
	if got := fresh.ServerSerial(); got != newServerSerial || got == oldServerSerial {
		t.Errorf("new handshake: server presented serial %s, want the renewed %s", got, newServerSerial)
	}
	if got := fresh.Ask(t); got != "ok "+newClientSerial || got == oldClientSerial {
		t.Errorf("new handshake: server saw client %q, want the renewed serial %s", got, newClientSerial)
	}
	if got := old.Ask(t); got != oldClientSerial {
		t.Errorf("connection opened before the renewals answered %q, want %q", got, oldClientSerial)
	}
}

// serveSerials answers each line with "ok <client serial>" or "refused <reason>".
func serveSerials(t *testing.T, kp *reload.KeyPair, pool *reload.CAPool) string {
	t.Helper()
	return tlsline.Serve(t, reload.ServerConfig(kp), func(st *tls.ConnectionState) string {
		peer, err := reload.VerifyClient(st, pool, []string{"agent-*"}, time.Now())
		if err != nil {
			return "refused " + err.(*reload.Refused).Reason
		}
		return "ok " + peer.Leaf.SerialNumber.String()
	})
}
