package relay_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/relay"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// mtls is the proxy serving mTLS from a development CA, and an agent
// certificate directory laid out as in the agent (cert.pem, key.pem,
// root_ca.pem).
type mtls struct {
	proxy *testProxy
	ca    *devca.CA
	certs certfile.Dir
}

func startMTLSProxy(t testing.TB, connectPorts ...int) *mtls {
	t.Helper()
	tlsOpts, ca := proxytest.DevMTLS(t, "agent-*")
	p := startProxy(t, tlsOpts, connectPorts...)
	certs := certfile.Dir(filepath.Join(t.TempDir(), "certs"))
	if _, err := ca.IssueTo(certs, devca.Request{CommonName: "agent-1", Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	return &mtls{proxy: p, ca: ca, certs: certs}
}

// identities are the certificate identities in the proxy's audit records.
func (m *mtls) identities(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(m.proxy.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		if _, rest, ok := strings.Cut(line, `"identity":"`); ok {
			id, _, _ := strings.Cut(rest, `"`)
			ids = append(ids, id)
		}
	}
	return ids
}

func TestMTLSHelperStreamsAsTheAgent(t *testing.T) {
	ctx := testContext(t)
	tokens := []string{"over", " mTLS"}
	received := make(chan struct{})
	f := startFake(t, fake.Options{Tokens: tokens, BeforeToken: func(ctx context.Context, i int) error {
		if i == 0 {
			return nil
		}
		select {
		case <-received:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	m := startMTLSProxy(t)
	r := startRelay(t, m.proxy.url, m.certs, hostOf(t, f.URL()))
	client := r.ollamaClient()
	var got []api.ChatResponse
	err := client.Chat(ctx, &api.ChatRequest{Model: fake.DefaultModel, Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(resp api.ChatResponse) error {
			got = append(got, resp)
			if len(got) == 1 {
				close(received)
			}
			return nil
		})
	if err != nil || len(got) != 3 || !got[2].Done {
		t.Fatalf("Chat over mTLS: %v, %+v; want 2 tokens, each flushed, and done", err, got)
	}
	for i := 0; i < 3; i++ {
		if _, err := client.List(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.proxy.ln.accepted.Load(); n != 1 {
		t.Errorf("proxy accepted %d connections for 4 sequential requests, want 1 reused (one TLS handshake)", n)
	}
	m.proxy.stop() // flushes the audit log
	for _, id := range m.identities(t) {
		if id != "agent-1" {
			t.Errorf("audit identity %q, want every exchange as agent-1", id)
		}
	}
}

func TestMTLSForwardProxyWithCurl(t *testing.T) {
	needTool(t, "curl")
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	origin, caFile := startTLSOrigin(t, "tunnelled over mTLS")
	m := startMTLSProxy(t, portOf(t, origin.URL))
	r := startRelay(t, m.proxy.url, m.certs, hostOf(t, f.URL()))
	env := toolEnv(r.forwardURL.String())
	if out := run(t, ctx, env, "curl", "-sS", "--fail", f.URL()+"/api/tags"); !strings.Contains(out, fake.DefaultModel) {
		t.Errorf("curl http:// through relay → mTLS proxy: %s", out)
	}
	if out := run(t, ctx, env, "curl", "-sS", "--fail", "--cacert", caFile, origin.URL+"/"); out != "tunnelled over mTLS" {
		t.Errorf("curl https:// (CONNECT) through relay → mTLS proxy: %q", out)
	}
}

// TestMTLSRenewedCertificateIsPresented renews the agent's certificate on
// disk (as certs renew does) and polls until a new connection to the proxy
// carries it: no restart of the relay.
func TestMTLSRenewedCertificateIsPresented(t *testing.T) {
	f := startFake(t, fake.Options{})
	origin, _ := startTLSOrigin(t, "x")
	m := startMTLSProxy(t, portOf(t, origin.URL))
	r := startRelay(t, m.proxy.url, m.certs, hostOf(t, f.URL()))
	if _, err := m.ca.IssueTo(m.certs, devca.Request{CommonName: "agent-renewed", Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		// Each CONNECT is a new connection to the proxy, so a new handshake.
		resp, _ := rawConnect(t, r.forwardURL.Host, hostOf(t, origin.URL))
		if resp.StatusCode != 200 {
			t.Fatalf("CONNECT through the relay: %d", resp.StatusCode)
		}
		ids := m.identities(t)
		if len(ids) > 0 && ids[len(ids)-1] == "agent-renewed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after renewal the proxy still sees identities %v, want agent-renewed", ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMTLSProxyRefusalReachesTheClient(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	m := startMTLSProxy(t)
	// A certificate the proxy's identity globs do not allow.
	if _, err := m.ca.IssueTo(m.certs, devca.Request{CommonName: "intruder", Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, m.proxy.url, m.certs, hostOf(t, f.URL()))
	_, err := r.ollamaClient().List(ctx)
	if err == nil || statusOf(err) < 400 || !strings.Contains(err.Error(), "intruder") {
		t.Errorf("List with a refused certificate: %v, want the proxy's refusal naming the identity", err)
	}
	if len(f.Requests()) != 0 {
		t.Error("a request reached Ollama although the proxy refused the certificate")
	}
}

func TestUpstreamNeedsCertificatesForHTTPS(t *testing.T) {
	_, err := relay.NewUpstream("https://proxy:3000", certfile.Dir(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "certs bootstrap") {
		t.Errorf("NewUpstream without certificates: %v, want an error saying how to get them", err)
	}
	for _, bad := range []string{"proxy:3000", "ftp://proxy", "https://proxy:3000/x", ""} {
		if _, err := relay.NewUpstream(bad, ""); err == nil {
			t.Errorf("NewUpstream(%q) accepted a bad proxy URL", bad)
		}
	}
}
