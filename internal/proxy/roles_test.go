package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/testutil/dlpsamples"
)

// rolesFixture is one mTLS proxy with a credential for 127.0.0.1 and three
// roles: ci (agent-ci-*: GET only, the credential, one tunnel, dlp
// enforced), sealed
// (agent-sealed or a SAN under sealed.test: the built-in private_allow,
// so no loopback), nogrant (no credentials, two requests and then a rate
// limit) and the top-level policy as the default role for everyone else.
type rolesFixture struct {
	*mtlsFixture
	up          *httptest.Server
	placeholder string
}

func startRolesProxy(t *testing.T) *rolesFixture {
	t.Helper()
	// The upstream says whether the real value or the placeholder
	// arrived, without echoing either.
	var placeholder string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		fmt.Fprintf(w, "%s injected=%v", r.Method, auth == "Bearer "+realToken)
		if auth == "Bearer "+placeholder {
			io.WriteString(w, " placeholder=true")
		}
	}))
	t.Cleanup(up.Close)
	v, creds := vaultCredentials(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, PlaintextHTTP: true}, realToken, nil)
	placeholder = v.Placeholders()[0].Placeholder
	port := portOf(t, up.URL)
	one, slow, burst := 1, 0.001, 2
	f := startMTLSProxyOpts(t, nil, func(c *config.Config) {
		c.Policy.ConnectPorts = []int{port}
		c.Roles = []config.Role{
			{
				Name: "ci", Identities: []string{"agent-ci-*"},
				Policy: policy.Config{Default: "deny", Allow: []policy.Rule{{Host: "127.0.0.1", Methods: []string{"GET"}}},
					PrivateAllow: []string{"127.0.0.0/8"}, ConnectPorts: []int{port}},
				Limits:      config.RoleLimits{MaxTunnelsPerIdentity: &one},
				Credentials: &[]string{"github"},
				DLP:         config.DLP{Mode: config.DLPEnforce},
			},
			{Name: "sealed", Identities: []string{"agent-sealed", "*.sealed.test"}},
			{
				Name: "nogrant", Identities: []string{"agent-nogrant"},
				Policy:      policy.Config{PrivateAllow: []string{"127.0.0.1"}},
				Limits:      config.RoleLimits{RatePerSecond: &slow, RateBurst: &burst},
				Credentials: &[]string{},
			},
		}
	}, Options{Credentials: creds})
	return &rolesFixture{mtlsFixture: f, up: up, placeholder: placeholder}
}

// send makes one request through the proxy as the agent c, with the
// placeholder in its Authorization header.
func (f *rolesFixture) send(t *testing.T, c *http.Client, method string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.up.URL+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+f.placeholder)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRolesGiveEachAgentItsOwnPolicy: two (and three) agents with
// different certificates through one proxy, each decided, limited,
// injected and recorded by its own role.
func TestRolesGiveEachAgentItsOwnPolicy(t *testing.T) {
	f := startRolesProxy(t)
	ci := f.client(f.clientCert(t, devca.Request{CommonName: "agent-ci-7"}))
	dev := f.client(f.clientCert(t, devca.Request{CommonName: "agent-dev"}))
	// Selected by a SAN, not the common name.
	sealed := f.client(f.clientCert(t, devca.Request{CommonName: "worker", SANs: []string{"w1.sealed.test"}}))

	// Methods: ci may only GET; the default role may POST.
	if code, body := f.send(t, ci, "GET"); code != 200 || body != "GET injected=true" {
		t.Fatalf("ci GET: %d %q, want 200 with the credential injected", code, body)
	}
	if code, _ := f.send(t, ci, "POST"); code != 403 {
		t.Fatalf("ci POST: %d, want 403 (its role allows GET only)", code)
	}
	// The default role has every credential and allows POST.
	if code, body := f.send(t, dev, "POST"); code != 200 || body != "POST injected=true" {
		t.Fatalf("dev POST: %d %q", code, body)
	}
	// private_allow per role: sealed may not reach a loopback address,
	// although the default role's pooled connection to the very same
	// upstream is idle in the proxy.
	if code, _ := f.send(t, sealed, "GET"); code != 403 {
		t.Fatalf("sealed GET to a loopback upstream: %d, want 403 (its role has no private_allow)", code)
	}
	recs := f.records(t, 4)
	want := []struct{ role, identity, reason string }{
		{"ci", "agent-ci-7", "allowlist"}, {"ci", "agent-ci-7", "method_denied"}, {"default", "agent-dev", "default_allow"}, {"sealed", "worker", "private_address"},
	}
	for i, w := range want {
		r := recs[i]
		if r.Role != w.role || r.Identity != w.identity || r.Reason != w.reason {
			t.Errorf("record %d: role %q identity %q reason %q, want %+v", i, r.Role, r.Identity, r.Reason, w)
		}
	}
	if recs[0].Credentials == nil || recs[2].Credentials == nil {
		t.Errorf("ci's and dev's records should name the injected credential: %+v %+v", recs[0].Credentials, recs[2].Credentials)
	}

	// /explain answers by the caller's role (selected by a SAN as much as
	// by the common name); asking about another identity is refused (see
	// TestExplainAnswersOnlyForTheCaller).
	for _, c := range []struct {
		client         *http.Client
		query          string
		role, decision string
	}{
		{ci, "method=POST", "ci", "deny"},
		{ci, "method=GET", "ci", "allow"},
		{dev, "method=POST", "default", "allow"},
		{sealed, "method=GET", "sealed", "deny"},
		{sealed, "method=GET&identity=w1.sealed.test", "sealed", "deny"},
	} {
		resp, err := f.direct(c.client).Get("https://" + f.addr + "/explain?" + c.query + "&url=" + f.up.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		var x Explanation
		decodeJSON(t, resp, &x)
		if x.Role != c.role || x.Decision != c.decision {
			t.Errorf("/explain?%s: role %q decision %q (%s), want %s %s", c.query, x.Role, x.Decision, x.Reason, c.role, c.decision)
		}
	}

	// The metrics name the role.
	m := f.scrape(t)
	for _, want := range []string{`reason="method_denied",role="ci"`, `role="default"`, `role="sealed"`,
		`slapenir_proxy_bytes_total{direction="out",role="ci"}`, `slapenir_proxy_request_duration_seconds_count{mode="forward",role="default"}`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRoleCredentialGrants: a credential not granted to the agent's role
// is never injected; its placeholder goes on unchanged and is audited as
// placeholder_not_granted, and /placeholders shows an agent only what its
// role may use.
func TestRoleCredentialGrants(t *testing.T) {
	f := startRolesProxy(t)
	ci := f.client(f.clientCert(t, devca.Request{CommonName: "agent-ci-1"}))
	nogrant := f.client(f.clientCert(t, devca.Request{CommonName: "agent-nogrant"}))
	if code, body := f.send(t, ci, "GET"); code != 200 || body != "GET injected=true" {
		t.Fatalf("ci (granted): %d %q, want the real value injected", code, body)
	}
	if code, body := f.send(t, nogrant, "GET"); code != 200 || body != "GET injected=false placeholder=true" {
		t.Fatalf("nogrant: %d %q, want the placeholder forwarded unchanged", code, body)
	}
	recs := f.records(t, 2)
	if len(recs[0].Credentials) != 1 || recs[0].Role != "ci" {
		t.Errorf("ci record: %+v", recs[0])
	}
	if r := recs[1]; r.Role != "nogrant" || len(r.Credentials) != 0 || len(r.Placeholders) != 1 || r.Placeholders[0] != (audit.PlaceholderNote{Credential: "github", Problem: "placeholder_not_granted"}) {
		t.Errorf("nogrant record: role %q credentials %v placeholders %+v, want one placeholder_not_granted", r.Role, r.Credentials, r.Placeholders)
	}
	list := func(c *http.Client) []secrets.Placeholder {
		resp, err := f.direct(c).Get("https://" + f.addr + "/placeholders")
		if err != nil {
			t.Fatal(err)
		}
		var l []secrets.Placeholder
		decodeJSON(t, resp, &l)
		return l
	}
	if l := list(ci); len(l) != 1 || l[0].Name != "github" {
		t.Errorf("ci's /placeholders: %+v", l)
	}
	if l := list(nogrant); len(l) != 0 {
		t.Errorf("nogrant's /placeholders lists %+v, want none", l)
	}
}

// TestRoleLimits: each role's rate and tunnel limits hold for its agents
// and no one else's.
func TestRoleLimits(t *testing.T) {
	f := startRolesProxy(t)
	nogrant := f.client(f.clientCert(t, devca.Request{CommonName: "agent-nogrant"}))
	dev := f.client(f.clientCert(t, devca.Request{CommonName: "agent-dev"}))
	// nogrant: two requests, then 429; the default role has no rate limit.
	var got []int
	for _, c := range []*http.Client{nogrant, nogrant, nogrant, dev, dev, dev} {
		code, _ := f.send(t, c, "GET")
		got = append(got, code)
	}
	if fmt.Sprint(got) != "[200 200 429 200 200 200]" {
		t.Fatalf("statuses %v, want nogrant limited after its burst of 2 and dev not at all", got)
	}
	// ci: one tunnel at a time; the default role may open several.
	ciCert := f.clientCert(t, devca.Request{CommonName: "agent-ci-1"})
	devCert := f.clientCert(t, devca.Request{CommonName: "agent-dev"})
	authority := strings.TrimPrefix(f.up.URL, "http://")
	if code := f.connect(t, ciCert, authority); code != 200 {
		t.Fatalf("ci's first tunnel: %d", code)
	}
	if code := f.connect(t, ciCert, authority); code != 503 {
		t.Fatalf("ci's second tunnel: %d, want 503 (its role's max_tunnels_per_identity is 1)", code)
	}
	for i := range 3 {
		if code := f.connect(t, devCert, authority); code != 200 {
			t.Fatalf("dev's tunnel %d: %d", i, code)
		}
	}
}

// direct is c talking to the proxy itself, not through it.
func (f *rolesFixture) direct(c *http.Client) *http.Client {
	tr := c.Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &http.Client{Transport: tr}
}

// connect opens a CONNECT tunnel over mTLS as cert and returns the status;
// a tunnel that opened stays open until the test ends.
func (f *rolesFixture) connect(t *testing.T, cert *tls.Certificate, authority string) int {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.roots, Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", authority)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// TestRoleDLP: outbound scanning is per role: the ci agent's request
// carrying a key is refused, the default role's (dlp off) is not.
func TestRoleDLP(t *testing.T) {
	f := startRolesProxy(t)
	ci := f.client(f.clientCert(t, devca.Request{CommonName: "agent-ci-1"}))
	dev := f.client(f.clientCert(t, devca.Request{CommonName: "agent-dev"}))
	key := dlpsamples.Secrets[0]
	for _, c := range []struct {
		client *http.Client
		status int
		reason string
	}{{ci, 403, "dlp_" + key.Rule}, {dev, 200, "default_allow"}} {
		req, _ := http.NewRequest("GET", f.up.URL+"/x", nil)
		req.Header.Set("X-Note", key.Text)
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("status %d, want %d", resp.StatusCode, c.status)
		}
	}
	for c, want := range map[*http.Client]string{ci: "enforce", dev: "off"} {
		resp, err := f.direct(c).Get("https://" + f.addr + "/explain?url=" + f.up.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		var x Explanation
		decodeJSON(t, resp, &x)
		if x.DLP != want {
			t.Errorf("/explain for role %s: dlp %q, want %q", x.Role, x.DLP, want)
		}
	}
	recs := f.records(t, 2)
	if recs[0].Role != "ci" || recs[0].Reason != "dlp_"+key.Rule || recs[1].Role != "default" || len(recs[1].DLP) != 0 {
		t.Errorf("records: %+v / %+v", recs[0], recs[1])
	}
}

// TestFleetMetrics: what an operator of many agents watches is in
// /metrics, by name and role, never by value or host.
func TestFleetMetrics(t *testing.T) {
	f := startRolesProxy(t)
	ci := f.client(f.clientCert(t, devca.Request{CommonName: "agent-ci-1", Lifetime: 2 * time.Hour}))
	nogrant := f.client(f.clientCert(t, devca.Request{CommonName: "agent-nogrant"}))
	dev := f.client(f.clientCert(t, devca.Request{CommonName: "agent-dev"}))
	f.send(t, ci, "GET")      // injected
	f.send(t, nogrant, "GET") // placeholder not granted
	req, _ := http.NewRequest("GET", f.up.URL+"/x", nil)
	req.Header.Set("X-Note", dlpsamples.Secrets[0].Text)
	if resp, err := ci.Do(req); err == nil { // a dlp finding
		resp.Body.Close()
	}
	// A loopback port nothing listens on: the credential's host (any port)
	// refused the connection.
	ln := listenLoopback(t)
	closed := ln.Addr().String()
	ln.Close()
	if resp, err := dev.Get("http://" + closed + "/"); err == nil {
		resp.Body.Close()
	}
	m := f.scrape(t)
	for _, want := range []string{
		`slapenir_proxy_injections_total{credential="github"} 1`,
		`slapenir_proxy_placeholders_forwarded_total{credential="github",problem="placeholder_not_granted"} 1`,
		`slapenir_proxy_dlp_findings_total{role="ci",rule="` + dlpsamples.Secrets[0].Rule + `"} 1`,
		`slapenir_proxy_upstream_errors_total{host_class="credential",kind="refused"} 1`,
		`slapenir_proxy_audit_write_seconds_count`,
		`slapenir_proxy_requests_total{code="4xx",decision="deny",identity="agent-ci-1",mode="forward",reason="dlp_` + dlpsamples.Secrets[0].Rule + `",role="ci"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var left float64
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, `slapenir_proxy_client_cert_expiry_seconds{identity="agent-ci-1"} `) {
			fmt.Sscan(strings.Fields(line)[1], &left)
		}
	}
	if left < 3000 || left > 2*3600 {
		t.Errorf("agent-ci-1's certificate has %v s left by the metrics, want about 2 h", left)
	}
	if strings.Contains(m, realToken) || strings.Contains(m, dlpsamples.Secrets[0].Text) || strings.Contains(m, "127.0.0.1") {
		t.Error("the metrics hold a value or a host")
	}
}
