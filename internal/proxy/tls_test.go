package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

// mtlsFixture is a proxy serving mTLS from a development CA, with the files
// on disk so tests can renew them.
type mtlsFixture struct {
	*testProxy
	ca        *devca.CA
	serverDir certfile.Dir
	roots     *x509.CertPool
}

func startMTLSProxy(t *testing.T, allowed []string, connectPorts ...int) *mtlsFixture {
	t.Helper()
	return startMTLSProxyWith(t, allowed, func(c *config.Config) {
		c.Policy.ConnectPorts = append(c.Policy.ConnectPorts, connectPorts...)
	})
}

func startMTLSProxyWith(t *testing.T, allowed []string, configure func(*config.Config)) *mtlsFixture {
	t.Helper()
	return startMTLSProxyOpts(t, allowed, configure, Options{})
}

// startMTLSProxyOpts is startMTLSProxyWith with more options (interception).
func startMTLSProxyOpts(t *testing.T, allowed []string, configure func(*config.Config), o Options) *mtlsFixture {
	t.Helper()
	// The embedded default's own setup, in a temp state directory.
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts, ca, err := DevTLS(ctx, state, []string{"localhost", "127.0.0.1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.KeyPair.SetInterval(time.Millisecond, t.Logf)
	opts.AllowedIdentities = allowed
	cfg := loopbackConfig()
	configure(cfg)
	o.TLS = opts
	p := startProxyOpts(t, cfg, o)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root)
	return &mtlsFixture{
		testProxy: p,
		ca:        ca, serverDir: certfile.Dir(filepath.Join(state, "proxy-tls")), roots: roots,
	}
}

func (f *mtlsFixture) clientCert(t *testing.T, r devca.Request) *tls.Certificate {
	t.Helper()
	r.Usage = devca.Client
	b, err := f.ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	return bundleCert(b)
}

func bundleCert(b certfile.Bundle) *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{b.Chain[0].Raw}, PrivateKey: b.Key, Leaf: b.Chain[0]}
}

// client talks to the proxy over TLS, presenting cert (nil: none), both as an
// HTTPS proxy and directly (X-Target-URL).
func (f *mtlsFixture) client(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: f.roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: f.addr}),
		TLSClientConfig: tc,
	}}
}

func (f *mtlsFixture) targetRequest(t *testing.T, c *http.Client, target string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+f.addr+"/api/tags", nil)
	req.Header.Set("X-Target-URL", target)
	// Straight to the proxy, not through it as a proxy.
	tr := c.Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestMTLSAgentIsServedAndNamed(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxy(t, []string{"agent-*"})
	c := f.client(f.clientCert(t, devca.Request{CommonName: "agent-1"}))
	resp, err := c.Get(up.URL + "/via-forward")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("forward over mTLS: %d", resp.StatusCode)
	}
	resp = f.targetRequest(t, c, up.URL)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("target over mTLS: %d", resp.StatusCode)
	}
	for _, r := range f.records(t, 2) {
		if r.Identity != "agent-1" || r.Decision != "allow" {
			t.Fatalf("record does not name the agent: %+v", r)
		}
	}
	// /explain answers the agent for itself by default.
	tr := c.Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	resp, err = (&http.Client{Transport: tr}).Get("https://" + f.addr + "/explain?method=GET&url=" + up.URL)
	if err != nil {
		t.Fatal(err)
	}
	var x Explanation
	decodeJSON(t, resp, &x)
	if x.Identity != "agent-1" || x.Decision != "allow" {
		t.Fatalf("/explain over mTLS: %+v", x)
	}
}

func TestMTLSConnectTunnel(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inner tls") }))
	defer up.Close()
	f := startMTLSProxy(t, nil, portOf(t, up.URL))
	c := f.client(f.clientCert(t, devca.Request{CommonName: "agent-1"}))
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(up.Certificate())
	resp, err := c.Get(up.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections()
	if string(b) != "inner tls" {
		t.Fatalf("got %q", b)
	}
	for _, r := range f.records(t, 1) {
		if r.Identity != "agent-1" || r.Mode != "connect" {
			t.Fatalf("record does not name the agent: %+v", r)
		}
	}
}

func TestMTLSRefusalsStillServeHealth(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxy(t, []string{"agent-*"})
	other, err := devca.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherBundle, err := other.Issue(devca.Request{CommonName: "agent-2", Usage: devca.Client})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no certificate", nil, reload.ReasonNoCertificate},
		{"self-signed", selfSigned(t, "agent-3"), reload.ReasonUnknownAuthority},
		{"another CA", bundleCert(otherBundle), reload.ReasonUnknownAuthority},
		{"expired", f.clientCert(t, devca.Request{CommonName: "agent-4", NotBefore: time.Now().Add(-48 * time.Hour), Lifetime: time.Hour}), reload.ReasonExpired},
		{"not yet valid", f.clientCert(t, devca.Request{CommonName: "agent-5", NotBefore: time.Now().Add(time.Hour), Lifetime: time.Hour}), reload.ReasonNotYetValid},
		{"identity not allowed", f.clientCert(t, devca.Request{CommonName: "intruder"}), reload.ReasonNotAllowed},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(tc.cert)
			// /health answers anyone who completes the handshake…
			tr := c.Transport.(*http.Transport).Clone()
			tr.Proxy = nil
			resp, err := (&http.Client{Transport: tr}).Get("https://" + f.addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/health: %d", resp.StatusCode)
			}
			// …and nothing else does.
			resp = f.targetRequest(t, c, up.URL)
			e := decodeError(t, resp)
			if resp.StatusCode != 403 || e.Reason != tc.reason || !strings.Contains(e.Error, "only /health") {
				t.Fatalf("got %d %+v, want 403 %s", resp.StatusCode, e, tc.reason)
			}
			resp, err = c.Get(up.URL + "/forward")
			if err != nil {
				t.Fatal(err)
			}
			if e := decodeError(t, resp); resp.StatusCode != 403 || e.Reason != tc.reason {
				t.Fatalf("forward without a valid certificate: %d %+v", resp.StatusCode, e)
			}
			// The proxy's other endpoints (here /explain) are refused too.
			resp, err = (&http.Client{Transport: tr}).Get("https://" + f.addr + "/explain?url=http://example.com/")
			if err != nil {
				t.Fatal(err)
			}
			if e := decodeError(t, resp); resp.StatusCode != 403 || e.Reason != tc.reason {
				t.Fatalf("/explain without a valid certificate: %d %+v", resp.StatusCode, e)
			}
			recs := f.records(t, 3*(i+1))
			for _, r := range recs[3*i:] {
				if r.Reason != tc.reason || r.Decision != "deny" || r.Identity != "" {
					t.Fatalf("refusal record: %+v", r)
				}
			}
		})
	}
}

func TestPlaintextOnTLSPort(t *testing.T) {
	f := startMTLSProxy(t, nil)
	resp := rawExchange(t, f.addr, "GET /api/tags HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://127.0.0.1:1\r\n\r\n")
	e := decodeError(t, resp)
	if resp.StatusCode != 400 || e.Reason != "tls_required" || !strings.Contains(e.Error, "client certificate") {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
	if rec := f.lastRecord(t, 1); rec.Mode != "tls" || rec.Reason != "tls_required" || rec.Decision != "deny" {
		t.Fatalf("record: %+v", rec)
	}
}

// TestRenewedCertificatesWithoutRestart: a renewed server certificate is
// served on the next handshake while an open connection keeps working, and a
// client presenting a renewed certificate is accepted.
func TestRenewedCertificatesWithoutRestart(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxy(t, nil)
	clientDir := certfile.Dir(t.TempDir())
	if _, err := f.ca.IssueTo(clientDir, devca.Request{CommonName: "agent-1", Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	ckp, err := reload.NewKeyPair(clientDir.Cert(), clientDir.Key())
	if err != nil {
		t.Fatal(err)
	}
	ckp.SetInterval(time.Millisecond, t.Logf)
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: f.addr}),
		TLSClientConfig: &tls.Config{RootCAs: f.roots, ServerName: "localhost", GetClientCertificate: ckp.GetClientCertificate},
	}
	c := &http.Client{Transport: tr}
	get := func() (reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return reused
	}
	get()
	oldServer := serverSerial(t, f)

	// Renew both certificates on disk.
	time.Sleep(10 * time.Millisecond) // a new mtime for the reloaders to see
	if _, err := f.ca.IssueTo(f.serverDir, devca.Request{CommonName: "localhost", SANs: []string{"127.0.0.1"}, Usage: devca.Server, Lifetime: time.Hour}); err != nil {
		t.Fatal(err)
	}
	renewed, err := f.ca.IssueTo(clientDir, devca.Request{CommonName: "agent-1", Usage: devca.Client})
	if err != nil {
		t.Fatal(err)
	}
	if !get() {
		t.Fatal("the connection opened before the renewal was not reused: renewal dropped it")
	}
	deadline := time.Now().Add(5 * time.Second)
	for serverSerial(t, f).Cmp(oldServer) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy still serves the old certificate after renewal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr.CloseIdleConnections()
	get() // a new connection, presenting the renewed client certificate
	if cur := ckp.Current().Leaf; cur == nil || cur.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Fatal("the client did not pick up its renewed certificate")
	}
}

func serverSerial(t *testing.T, f *mtlsFixture) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func selfSigned(t *testing.T, cn string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestRateLimitPerIdentity: two agents from the same address have a bucket
// each, and the identity labels the proxy's metrics.
func TestRateLimitPerIdentity(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxyWith(t, nil, func(c *config.Config) {
		c.Limits.RatePerSecond, c.Limits.RateBurst = 0.001, 1 // one request, no refill to speak of
	})
	a := f.client(f.clientCert(t, devca.Request{CommonName: "agent-a"}))
	b := f.client(f.clientCert(t, devca.Request{CommonName: "agent-b"}))
	status := func(c *http.Client) int {
		t.Helper()
		resp, err := c.Get(up.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := []int{status(a), status(a), status(b)}; got[0] != 200 || got[1] != 429 || got[2] != 200 {
		t.Fatalf("statuses a, a, b = %v; want 200 429 200 (a bucket per identity)", got)
	}
	m := f.scrape(t)
	for _, want := range []string{`identity="agent-a"`, `identity="agent-b"`, `reason="rate_limited"`} {
		if !strings.Contains(string(m), want) {
			t.Fatalf("metrics lack %s:\n%.2000s", want, m)
		}
	}
}

// TestResumedSessionIsStillChecked: an agent's second connection resumes its
// TLS session (issue 13: a new mTLS connection should cost little more than
// a plain one) and is still named and audited as that agent; a resumed
// session whose certificate has since expired is refused like any other.
func TestResumedSessionIsStillChecked(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxy(t, []string{"agent-*"})
	cert := f.clientCert(t, devca.Request{CommonName: "agent-1", NotBefore: time.Now(), Lifetime: 2 * time.Second})
	cfg := &tls.Config{RootCAs: f.roots, Certificates: []tls.Certificate{*cert}, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	get := func() (resumed bool, status int) {
		t.Helper()
		c, err := tls.Dial("tcp", f.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: "+up.URL+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return c.ConnectionState().DidResume, resp.StatusCode
	}
	if resumed, status := get(); resumed || status != http.StatusOK {
		t.Fatalf("first connection: resumed %v, status %d", resumed, status)
	}
	if resumed, status := get(); !resumed || status != http.StatusOK {
		t.Fatalf("second connection: resumed %v, status %d; want a resumed session served", resumed, status)
	}
	for _, r := range f.records(t, 2) {
		if r.Identity != "agent-1" {
			t.Fatalf("record of a resumed connection does not name the agent: %+v", r)
		}
	}
	time.Sleep(time.Until(cert.Leaf.NotAfter) + 1100*time.Millisecond)
	// Whether crypto/tls still resumes such a session is its choice; either
	// way the proxy must refuse.
	if _, status := get(); status != http.StatusForbidden {
		t.Errorf("after the certificate expired: status %d; want 403", status)
	}
}
