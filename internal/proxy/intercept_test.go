package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/mitm"
)

// startInterceptingProxy intercepts CONNECTs to 127.0.0.1 and trusts up's
// certificate upstream.
func startInterceptingProxy(t *testing.T, up *httptest.Server) *testProxy {
	t.Helper()
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
	return startProxyOpts(t, cfg, Options{Intercept: interceptLoopback(t, up)})
}

// interceptLoopback intercepts 127.0.0.1 with a fresh CA, trusting up.
func interceptLoopback(t *testing.T, up *httptest.Server) *InterceptOptions {
	t.Helper()
	ca, err := devca.EnsureAt(t.TempDir(), "test interception CA")
	if err != nil {
		t.Fatal(err)
	}
	g, err := hostport.ParseGlob("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	return &InterceptOptions{Authority: mitm.New(ca), Hosts: []hostport.Glob{g}, UpstreamRoots: roots}
}

// TestInterceptedRequestsRecheckTheCertificate: a client certificate that
// expires while its intercepted tunnel is open stops working: the tunnel is
// cut at NotAfter (see TestBlindTunnelEndsWhenTheCertificateExpires), and a
// new one is refused, as any request with it would be; a request that
// slips into the old tunnel first is refused inside it (serveInner checks
// the certificate per request).
func TestInterceptedRequestsRecheckTheCertificate(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	intercept := interceptLoopback(t, up)
	f := startMTLSProxyOpts(t, nil, func(c *config.Config) { c.Policy.ConnectPorts = []int{portOf(t, up.URL)} }, Options{Intercept: intercept})
	expires := time.Now().Add(1500 * time.Millisecond)
	cert := f.clientCert(t, devca.Request{CommonName: "agent-short", NotBefore: time.Now().Add(-time.Hour), Lifetime: time.Until(expires) + time.Hour})
	c := f.client(cert)
	tr := c.Transport.(*http.Transport)
	roots := f.roots.Clone()
	if !roots.AppendCertsFromPEM(intercept.Authority.CertPEM()) {
		t.Fatal("the interception CA does not parse")
	}
	tr.TLSClientConfig.RootCAs = roots
	resp, err := c.Get(up.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with a valid certificate: %d", resp.StatusCode)
	}
	time.Sleep(time.Until(cert.Leaf.NotAfter) + 200*time.Millisecond)
	resp, err = c.Get(up.URL + "/")
	switch {
	case err != nil && strings.Contains(err.Error(), "Forbidden"):
		// The tunnel was cut and the new CONNECT refused.
	case err != nil:
		t.Fatal(err)
	default:
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("after the certificate expired: %d, want 403", resp.StatusCode)
		}
	}
	refused := false
	for _, r := range f.records(t, 3) {
		if r.Time.After(cert.Leaf.NotAfter) && r.Mode == modeIntercept && r.Decision == decisionAllow {
			t.Fatalf("a request was served after the certificate expired: %+v", r)
		}
		refused = refused || r.Decision == decisionDeny && r.Reason == "certificate_expired"
	}
	if !refused {
		t.Fatal("no refusal of the expired certificate was audited")
	}
}

// interceptCA fetches the interception CA from the proxy, as an agent does.
func interceptCA(t *testing.T, p *testProxy) *x509.CertPool {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("/ca.pem: %d %q", resp.StatusCode, pemBytes)
	}
	return pool
}

func TestInterceptedTunnelHTTP1AndHTTP2(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s %s", r.Method, r.URL.RequestURI())
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	p := startInterceptingProxy(t, up)
	pool := interceptCA(t, p)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := (&http.Client{Transport: tr}).Get(up.URL + "/inner?x=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "upstream saw GET /inner?x=1" {
			t.Fatalf("h2=%v: got %q", h2, b)
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			t.Fatalf("agent spoke HTTP/%d to the proxy, want HTTP/%d", resp.ProtoMajor, want)
		}
		if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != "test interception CA" {
			t.Fatal("the agent's TLS was not terminated with the interception CA")
		}
	}
	var inner, tunnels int
	for _, r := range p.records(t, 4) {
		switch r.Mode {
		case "intercept":
			inner++
			if r.Path != "/inner?x=1" || r.Status != 200 || r.Scheme != "https" || r.Host != "127.0.0.1" {
				t.Fatalf("inner record: %+v", r)
			}
		case "connect":
			tunnels++
			if r.Reason != "intercepted" {
				t.Fatalf("tunnel record: %+v", r)
			}
		}
	}
	if inner != 2 || tunnels != 2 {
		t.Fatalf("want 2 inner and 2 tunnel records, got %d and %d", inner, tunnels)
	}
}

// TestInterceptSNIMustMatchConnect: the SNI cannot redirect an intercepted
// tunnel, and neither can the inner Host header.
func TestInterceptDestinationIsTheAuthority(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	defer up.Close()
	p := startInterceptingProxy(t, up)
	pool := interceptCA(t, p)
	authority := up.Listener.Addr().String()

	c := openTunnel(t, p.addr, authority)
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "evil.example"})
	if err := tc.Handshake(); err == nil {
		t.Fatal("the proxy accepted an SNI that is not the CONNECT host")
	}
	c.Close()

	c = openTunnel(t, p.addr, authority)
	tc = tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, resp); resp.StatusCode != http.StatusMisdirectedRequest || e.Reason != "host_mismatch" {
		t.Fatalf("inner Host mismatch: %d %+v", resp.StatusCode, e)
	}
	recs := p.records(t, 3)
	findRecord(t, recs, "intercept_handshake_failed")
	findRecord(t, recs, "host_mismatch")
}

func TestNoInterceptionCA(t *testing.T) {
	p := startProxy(t, nil)
	resp, err := http.Get("http://" + p.addr + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, resp); resp.StatusCode != 404 || e.Reason != "no_interception" {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
}
