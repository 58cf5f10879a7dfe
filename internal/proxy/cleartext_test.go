package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/mitm"
	"github.com/slapenir/slapenir/internal/secrets"
)

// tlsSide is a proxy holding cred (value realToken from the vault) that
// intercepts tunnels to the TLS upstreams ups, whose certificates it trusts.
type tlsSide struct {
	p      *testProxy
	client *http.Client // through the proxy, trusting its interception CA
}

func credProxyTLS(t *testing.T, cred secrets.CredentialConfig, ups ...*httptest.Server) tlsSide {
	t.Helper()
	ca, err := devca.EnsureAt(t.TempDir(), "test interception CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	var ports []int
	for _, up := range ups {
		roots.AddCert(up.Certificate())
		ports = append(ports, portOf(t, up.URL))
	}
	p := credProxyWith(t, cred, func(cfg *config.Config, o *Options) {
		cfg.Policy.ConnectPorts = ports
		o.Intercept = &InterceptOptions{Authority: mitm.New(ca), UpstreamRoots: roots}
	})
	tr := &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: interceptCA(t, p)}, DisableCompression: true}
	return tlsSide{p: p, client: &http.Client{Transport: tr}}
}

// sendPlaceholder sends the placeholder in an Authorization header to u, the
// way its scheme is sent (https through an intercepted tunnel, http as a
// forward proxy request) or by X-Target-URL, and returns the Authorization
// the upstream got (echo's last) and the request's audit record.
func (s tlsSide) sendPlaceholder(t *testing.T, echo *recordingEcho, u string, byTarget bool, n int) (string, audit.Record) {
	t.Helper()
	path := fmt.Sprintf("/user/%d", n)
	req, _ := http.NewRequest("GET", u+path, nil)
	c := s.client
	if byTarget {
		req, _ = http.NewRequest("GET", "http://"+s.p.addr+path, nil)
		req.Header.Set(targetHeader, u)
		c = http.DefaultClient
	}
	req.Header.Set("Authorization", "Bearer DUMMY_GITHUB")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", u, resp.Status)
	}
	auth := ""
	for _, line := range strings.Split(echo.last(), "\n") {
		if v, ok := strings.CutPrefix(line, "Authorization="); ok {
			auth = v
		}
	}
	return auth, s.p.recordOf(t, path)
}

// recordOf waits for the outcome record of the request for path: records
// are written when exchanges end, and a tunnel's only when it closes.
func (p *testProxy) recordOf(t *testing.T, path string) audit.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, r := range readRecords(t, p.auditFile) {
			if r.Path == path {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of %s in %+v", path, readRecords(t, p.auditFile))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// explainSays is what the proxy's own RuleSet says of credential github
// for GET u: the locations it is injected in, and why not when it is not.
func explainSays(t *testing.T, p *testProxy, u string) (injected []string, why string) {
	t.Helper()
	x, err := p.srv.cur.Load().rules.Explain(context.Background(), "GET", u+"/user", "", false)
	if err != nil {
		t.Fatal(err)
	}
	return x.Credentials[0].Injected, x.Credentials[0].Why
}

// checkInjection checks one request: whether the real value reached the
// upstream, what the record says, and that the explanation agrees.
func checkInjection(t *testing.T, s tlsSide, echo *recordingEcho, u string, byTarget bool, n int, wantInjected bool, wantProblem string) {
	t.Helper()
	how := "as the agent's tools send it"
	if byTarget {
		how = "by X-Target-URL"
	}
	auth, rec := s.sendPlaceholder(t, echo, u, byTarget, n)
	injected, why := explainSays(t, s.p, u)
	if wantInjected {
		if auth != "Bearer "+realToken || !slices.Equal(rec.Credentials, []string{"github"}) || len(rec.Placeholders) != 0 {
			t.Errorf("%s %s: want the value injected; the upstream got %q, the record %v %v", u, how, auth, rec.Credentials, rec.Placeholders)
		}
		if len(injected) == 0 {
			t.Errorf("%s: the proxy injects but policy explain says not: %s", u, why)
		}
		return
	}
	want := []audit.PlaceholderNote{{Credential: "github", Problem: wantProblem}}
	if auth != "Bearer DUMMY_GITHUB" || len(rec.Credentials) != 0 || !slices.Equal(rec.Placeholders, want) || rec.Decision != decisionAllow {
		t.Errorf("%s %s: want the placeholder forwarded unchanged and noted %s; the upstream got %q, the record %s %v %v", u, how, wantProblem, auth, rec.Decision, rec.Credentials, rec.Placeholders)
	}
	if len(injected) != 0 || !strings.HasPrefix(why, wantProblem+":") {
		t.Errorf("%s: the proxy does not inject (%s) but policy explain says %v: %s", u, wantProblem, injected, why)
	}
}

// TestCredentialIsSentOnlyInsideTLS: a credential whose host entry names no
// port is injected into TLS to that host — an intercepted tunnel, an https
// target — and not into plain http to the same host on any port, where
// the placeholder goes on unchanged with placeholder_cleartext in the
// record; policy explain says the same as the proxy each time.
func TestCredentialIsSentOnlyInsideTLS(t *testing.T) {
	echo := &recordingEcho{}
	secure := httptest.NewTLSServer(echo)
	defer secure.Close()
	plain := httptest.NewServer(echo)
	defer plain.Close()
	s := credProxyTLS(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}}, secure)
	n := 0
	for _, c := range []struct {
		url          string
		byTarget     bool
		wantInjected bool
	}{
		{secure.URL, false, true}, // CONNECT, intercepted
		{secure.URL, true, true},  // X-Target-URL: https://…
		{plain.URL, false, false}, // GET http://… as a forward proxy
		{plain.URL, true, false},  // X-Target-URL: http://…
	} {
		n++
		checkInjection(t, s, echo, c.url, c.byTarget, n, c.wantInjected, problemCleartext)
	}
}

// TestPlaintextHTTPOptIn: with plaintext_http: true the credential is
// injected into plain http to its hosts as well (a local test server), and
// over TLS as before.
func TestPlaintextHTTPOptIn(t *testing.T) {
	echo := &recordingEcho{}
	plain := httptest.NewServer(echo)
	defer plain.Close()
	secure := httptest.NewTLSServer(echo)
	defer secure.Close()
	s := credProxyTLS(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, PlaintextHTTP: true}, secure)
	checkInjection(t, s, echo, plain.URL, false, 1, true, "")
	checkInjection(t, s, echo, plain.URL, true, 2, true, "")
	checkInjection(t, s, echo, secure.URL, false, 3, true, "")
}

// TestPortInHostEntryBindsTheCredential: a host entry with a port is that
// port alone, for TLS and (with the opt-in) plain http: another port of the
// same host gets the placeholder, noted placeholder_foreign_host.
func TestPortInHostEntryBindsTheCredential(t *testing.T) {
	echo := &recordingEcho{}
	bound, other := httptest.NewTLSServer(echo), httptest.NewTLSServer(echo)
	defer bound.Close()
	defer other.Close()
	plainBound, plainOther := httptest.NewServer(echo), httptest.NewServer(echo)
	defer plainBound.Close()
	defer plainOther.Close()
	hosts := []string{fmt.Sprintf("127.0.0.1:%d", portOf(t, bound.URL)), fmt.Sprintf("127.0.0.1:%d", portOf(t, plainBound.URL))}
	s := credProxyTLS(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: hosts, PlaintextHTTP: true}, bound, other)
	checkInjection(t, s, echo, bound.URL, false, 1, true, "")
	// By X-Target-URL: a CONNECT to a port that is no credential's host is
	// a blind tunnel, where nothing is seen, injected or noted.
	checkInjection(t, s, echo, other.URL, true, 2, false, problemForeignHost)
	checkInjection(t, s, echo, plainBound.URL, false, 3, true, "")
	checkInjection(t, s, echo, plainOther.URL, true, 4, false, problemForeignHost)

	// Without the opt-in, the bound port over plain http is cleartext.
	s = credProxyTLS(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: hosts}, bound)
	checkInjection(t, s, echo, plainBound.URL, false, 1, false, problemCleartext)
	checkInjection(t, s, echo, bound.URL, true, 2, true, "")
}
