package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/mitm"
	"github.com/slapenir/slapenir/internal/secrets"
)

const realToken = "ghp_R3alSecretValue0123456789abcdefXYZ"

// everywhere injects into every part of a request: what most tests here
// exercise. The default (header alone) has tests of its own.
var everywhere = []string{"header", "query", "path", "body"}

// credProxy starts a proxy holding one credential, "github", whose real
// value is realToken, which belongs to hosts and is injected everywhere,
// plain http included: the test upstreams listen on loopback without TLS,
// so the credential opts in, as a local test host's would.
func credProxy(t testing.TB, hosts []string, extra func(*config.Config, *Options)) *testProxy {
	t.Helper()
	return credProxyWith(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: hosts, Inject: everywhere, PlaintextHTTP: true}, extra)
}

// credProxyWith is credProxy for a credential configured by the test; its
// value is realToken, read from GITHUB_TOKEN.
func credProxyWith(t testing.TB, cred secrets.CredentialConfig, extra func(*config.Config, *Options)) *testProxy {
	t.Helper()
	_, creds := vaultCredentials(t, cred, realToken, nil)
	cfg := loopbackConfig()
	// Every log line the proxy writes, at every level, is checked too.
	logFile := filepath.Join(t.TempDir(), "proxy.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Credentials: creds, Log: slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if extra != nil {
		extra(cfg, &o)
	}
	p := startProxyOpts(t, cfg, o)
	t.Cleanup(func() {
		assertNoSecretIn(t, p.auditFile)
		assertNoSecretIn(t, logFile)
		lf.Close()
	})
	return p
}

// credProxyIntercepting is credProxy for TLS upstream up on 127.0.0.1: the
// credential's host, so its tunnels are intercepted with a fresh CA, which
// it returns.
func credProxyIntercepting(t *testing.T, up *httptest.Server) (*testProxy, *devca.CA) {
	t.Helper()
	ca, err := devca.EnsureAt(t.TempDir(), "test interception CA")
	if err != nil {
		t.Fatal(err)
	}
	p := credProxy(t, []string{"127.0.0.1"}, func(cfg *config.Config, o *Options) {
		cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
		o.Intercept = &InterceptOptions{Authority: mitm.New(ca), UpstreamRoots: poolOf(up.Certificate())}
	})
	return p, ca
}

// assertNoSecretIn fails when the real value, in any usual encoding, is in file.
func assertNoSecretIn(t testing.TB, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	for _, form := range encodings(realToken) {
		if bytes.Contains(b, []byte(form)) {
			t.Errorf("the real secret (as %q) is in %s", form, file)
		}
	}
}

func encodings(s string) []string {
	return []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s)), url.QueryEscape(s)}
}

// assertNoSecret fails when the real value, in any usual encoding or in any
// letter case (a header name arrives case-folded), is in b.
func assertNoSecret(t testing.TB, where string, b []byte) {
	t.Helper()
	for _, form := range encodings(realToken) {
		if bytes.Contains(b, []byte(form)) {
			t.Fatalf("the real secret (as %q) reached the agent in %s: %q", form, where, b)
		}
	}
	if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(realToken))) {
		t.Fatalf("the real secret, in other letter case, reached the agent in %s: %q", where, b)
	}
}

// assertNoSecretInHead is assertNoSecret for header blocks, where a value
// folded over two lines arrives joined by a space: the secret must not be
// there with white space taken out either.
func assertNoSecretInHead(t testing.TB, where string, head []byte) {
	t.Helper()
	assertNoSecret(t, where, head)
	squeezed := bytes.NewBuffer(nil)
	for _, c := range head {
		if c != ' ' && c != '\t' {
			squeezed.WriteByte(c)
		}
	}
	assertNoSecret(t, where+" (white space taken out)", squeezed.Bytes())
}

// recordingEcho records what it received and echoes it all back, so one
// request proves both injection (upstream side) and redaction (agent side).
type recordingEcho struct {
	mu   sync.Mutex
	seen []string
}

func (e *recordingEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "uri=%s\n", r.RequestURI)
	for _, h := range []string{"Authorization", "X-Api-Key"} {
		fmt.Fprintf(&buf, "%s=%s\n", h, r.Header.Get(h))
	}
	fmt.Fprintf(&buf, "body=%s\n", body)
	e.mu.Lock()
	e.seen = append(e.seen, buf.String())
	e.mu.Unlock()
	w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
	w.Header().Set("Location", "https://example.com/cb?token="+realToken)
	w.Write(buf.Bytes())
}

func (e *recordingEcho) last() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[len(e.seen)-1]
}

func placeholderRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u+"/repos/DUMMY_GITHUB/x?access_token=DUMMY_GITHUB&q=1", strings.NewReader(`{"token":"DUMMY_GITHUB"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer DUMMY_GITHUB")
	req.Header.Set("X-Api-Key", "DUMMY_GITHUB")
	return req
}

func TestInjectionForItsHostAndRedactionBack(t *testing.T) {
	echo := &recordingEcho{}
	up := httptest.NewServer(echo)
	defer up.Close()
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	for _, mode := range []string{"forward", "target"} {
		var resp *http.Response
		var err error
		if mode == "forward" {
			resp, err = p.client().Do(placeholderRequest(t, "POST", up.URL))
		} else {
			req := placeholderRequest(t, "POST", "http://"+p.addr)
			req.Header.Set("X-Target-URL", up.URL)
			resp, err = http.DefaultClient.Do(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen := echo.last()
		for _, want := range []string{"uri=/repos/" + realToken + "/x?access_token=" + realToken + "&q=1", "Authorization=Bearer " + realToken, "X-Api-Key=" + realToken, `body={"token":"` + realToken + `"}`} {
			if !strings.Contains(seen, want) {
				t.Fatalf("%s: upstream did not get the real value: want %q in\n%s", mode, want, seen)
			}
		}
		assertNoSecret(t, mode+" body", body)
		var hdr bytes.Buffer
		resp.Header.Write(&hdr)
		assertNoSecret(t, mode+" headers", hdr.Bytes())
		if !strings.Contains(string(body), "[REDACTED]") || !strings.Contains(resp.Header.Get("Location"), "[REDACTED]") {
			t.Fatalf("%s: echo not redacted: %q / %q", mode, body, resp.Header.Get("Location"))
		}
	}
	for _, r := range p.records(t, 2) {
		if len(r.Credentials) != 1 || r.Credentials[0] != "github" || r.Redactions < 3 {
			t.Fatalf("record does not name the injected credential or count redactions: %+v", r)
		}
	}
}

func TestPlaceholderToForeignHostIsNotInjected(t *testing.T) {
	echo := &recordingEcho{}
	up := httptest.NewServer(echo)
	defer up.Close()
	p := credProxy(t, []string{"api.github.com"}, nil)
	resp, err := p.client().Do(placeholderRequest(t, "POST", up.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen := echo.last(); strings.Contains(seen, realToken) || !strings.Contains(seen, "Bearer DUMMY_GITHUB") {
		t.Fatalf("a foreign host got the real value, or lost the placeholder:\n%s", seen)
	}
	rec := p.lastRecord(t, 1)
	want := []audit.PlaceholderNote{{Credential: "github", Problem: "placeholder_foreign_host"}}
	if rec.Decision != decisionAllow || rec.Error != "" || len(rec.Credentials) != 0 || !slices.Equal(rec.Placeholders, want) {
		t.Fatalf("record: %+v, want decision allow, no error, no credential injected, placeholders %+v", rec, want)
	}
}

// TestRefusalKeepsItsReasonWithForeignPlaceholders: a request carrying a
// foreign placeholder that the policy then refuses (its host resolves to a
// private address) is recorded as that refusal, with the placeholder noted
// beside it, not instead of it.
func TestRefusalKeepsItsReasonWithForeignPlaceholders(t *testing.T) {
	p := credProxy(t, []string{"api.github.com"}, func(cfg *config.Config, _ *Options) {
		cfg.Policy.PrivateAllow = nil
	})
	resp, err := p.client().Do(placeholderRequest(t, "POST", "http://localhost:9/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403 private_address", resp.StatusCode)
	}
	rec := p.lastRecord(t, 1)
	if rec.Reason != "private_address" || rec.Decision != decisionDeny || len(rec.Placeholders) != 1 || rec.Placeholders[0].Problem != "placeholder_foreign_host" {
		t.Fatalf("record: %+v, want reason private_address with the foreign placeholder noted", rec)
	}
}

// TestInjectionOnlyWhereConfigured: by default a placeholder becomes the
// real value in request headers alone, so an agent cannot have it written
// into a stored note (body) or a URL another host receives (query, path);
// there it is forwarded unchanged and audited as placeholder_location. A
// credential that names more locations is injected there too.
func TestInjectionOnlyWhereConfigured(t *testing.T) {
	echo := &recordingEcho{}
	up := httptest.NewServer(echo)
	defer up.Close()
	for _, tc := range []struct {
		inject    []string
		injected  []string // what the upstream must see
		untouched []string // what it must see unchanged
		misplaced []string
	}{
		{nil, []string{"Authorization=Bearer " + realToken, "X-Api-Key=" + realToken},
			[]string{"uri=/repos/DUMMY_GITHUB/x?access_token=DUMMY_GITHUB&q=1", `body={"token":"DUMMY_GITHUB"}`}, []string{"path", "query", "body"}},
		{[]string{"header", "body"}, []string{"Authorization=Bearer " + realToken, `body={"token":"` + realToken + `"}`},
			[]string{"uri=/repos/DUMMY_GITHUB/x?access_token=DUMMY_GITHUB&q=1"}, []string{"path", "query"}},
		{[]string{"query"}, []string{"access_token=" + realToken}, []string{"Authorization=Bearer DUMMY_GITHUB", "uri=/repos/DUMMY_GITHUB/x?"}, []string{"path", "header", "body"}},
	} {
		t.Run(strings.Join(tc.inject, "+"), func(t *testing.T) {
			p := credProxyWith(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, Inject: tc.inject, PlaintextHTTP: true}, nil)
			resp, err := p.client().Do(placeholderRequest(t, "POST", up.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen := echo.last()
			for _, w := range tc.injected {
				if !strings.Contains(seen, w) {
					t.Errorf("want %q upstream, got\n%s", w, seen)
				}
			}
			for _, w := range tc.untouched {
				if !strings.Contains(seen, w) {
					t.Errorf("want %q upstream unchanged, got\n%s", w, seen)
				}
			}
			rec := p.lastRecord(t, 1)
			var got []string
			for _, n := range rec.Placeholders {
				if n.Problem != "placeholder_location" || n.Credential != "github" {
					t.Errorf("placeholder note %+v", n)
				}
				got = append(got, n.Location)
			}
			if !slices.Equal(got, tc.misplaced) || !slices.Equal(rec.Credentials, []string{"github"}) {
				t.Errorf("record: credentials %v, misplaced placeholders in %v; want [github] and %v", rec.Credentials, got, tc.misplaced)
			}
		})
	}
}

func TestBasicAuthInjection(t *testing.T) {
	echo := &recordingEcho{}
	up := httptest.NewServer(echo)
	defer up.Close()
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	req, _ := http.NewRequest("GET", up.URL+"/info/refs", nil)
	req.SetBasicAuth("x-access-token", "DUMMY_GITHUB")
	resp, err := p.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+realToken))
	if seen := echo.last(); !strings.Contains(seen, "Authorization="+want) {
		t.Fatalf("Basic credential not injected:\n%s", seen)
	}
}

// TestLeaksInStreamsAndEncodings: a secret split across flushes inside an
// NDJSON stream, in base64, and in a gzip-compressed body never reaches the
// agent, and the stream still streams.
func TestLeaksInStreamsAndEncodings(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("prefix:" + realToken))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ndjson":
			w.Header().Set("Content-Type", "application/x-ndjson")
			half := len(realToken) / 2
			for _, part := range []string{`{"token":"` + realToken[:half], realToken[half:] + `"}` + "\n", `{"b64":"` + b64 + `","done":true}` + "\n"} {
				io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprintf(zw, "leaked %s and %s", realToken, b64)
			zw.Close()
		case "/weird":
			w.Header().Set("Content-Encoding", "x-custom")
			io.WriteString(w, realToken)
		}
	}))
	defer up.Close()
	p := credProxy(t, []string{"api.github.com"}, nil)
	c := p.client()

	resp, err := c.Get(up.URL + "/ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	resp.Body.Close()
	all := strings.Join(lines, "\n")
	assertNoSecret(t, "ndjson", []byte(all))
	if strings.Contains(all, b64) || len(lines) != 2 || !json.Valid([]byte(lines[0])) {
		t.Fatalf("ndjson: %q", lines)
	}

	resp, err = c.Get(up.URL + "/gzip")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertNoSecret(t, "gzip", body)
	if !strings.HasPrefix(string(body), "leaked [REDACTED] and ") || strings.Contains(string(body), b64) || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("gzip: %q %v", body, resp.Header)
	}

	resp, err = c.Get(up.URL + "/weird")
	if err != nil {
		t.Fatal(err)
	}
	e := decodeError(t, resp)
	if resp.StatusCode != 502 || e.Reason != "unknown_encoding" {
		t.Fatalf("unknown encoding: %d %+v", resp.StatusCode, e)
	}
}

// TestInjectionThroughInterceptedTLS: a CONNECT to a credential's host is
// intercepted; the placeholder becomes the value inside, and the answer is
// redacted.
func TestInjectionThroughInterceptedTLS(t *testing.T) {
	echo := &recordingEcho{}
	up := httptest.NewTLSServer(echo)
	defer up.Close()
	p, _ := credProxyIntercepting(t, up)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: interceptCA(t, p)}}}
	resp, err := c.Do(placeholderRequest(t, "POST", up.URL))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if seen := echo.last(); !strings.Contains(seen, "Authorization=Bearer "+realToken) {
		t.Fatalf("not injected inside the intercepted tunnel:\n%s", seen)
	}
	assertNoSecret(t, "intercepted body", body)
	var hdr bytes.Buffer
	resp.Header.Write(&hdr)
	assertNoSecret(t, "intercepted headers", hdr.Bytes())
}

func TestPlaceholdersEndpoint(t *testing.T) {
	p := credProxy(t, []string{"api.github.com"}, nil)
	resp, err := http.Get("http://" + p.addr + "/placeholders")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assertNoSecret(t, "/placeholders", b)
	var list []secrets.Placeholder
	if err := json.Unmarshal(b, &list); err != nil || len(list) != 1 || list[0].Name != "github" || list[0].Env != "GITHUB_TOKEN" || list[0].Placeholder != "DUMMY_GITHUB" {
		t.Fatalf("/placeholders: %s (%v)", b, err)
	}
}

// TestCurlTrustingCAPem: the real curl, trusting only the CA the proxy serves
// at /ca.pem, sends a placeholder through an intercepted tunnel (HTTP/2 when
// curl offers it); the upstream gets the value and curl gets it redacted.
func TestCurlTrustingCAPem(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (apt-get install curl)")
	}
	echo := &recordingEcho{}
	up := httptest.NewUnstartedServer(echo)
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	p, _ := credProxyIntercepting(t, up)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if out, err := exec.Command(curl, "-sS", "--fail", "-o", caFile, "http://"+p.addr+"/ca.pem").CombinedOutput(); err != nil {
		t.Fatalf("fetching /ca.pem: %v %s", err, out)
	}
	out, err := exec.Command(curl, "-sS", "--fail", "--proxy", "http://"+p.addr, "--cacert", caFile,
		"-H", "Authorization: Bearer DUMMY_GITHUB", "-D", "-", up.URL+"/from-curl").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if seen := echo.last(); !strings.Contains(seen, "Authorization=Bearer "+realToken) {
		t.Fatalf("curl's placeholder was not injected:\n%s", seen)
	}
	assertNoSecret(t, "curl output", out)
	if !strings.Contains(string(out), "[REDACTED]") {
		t.Fatalf("curl output not redacted:\n%s", out)
	}
}

// TestRecordNamesInjectionIntoAStreamedBody: a body over smallBody streams
// through the injector while the upstream may already have answered; the
// record still names the credential injected into it (it went missing 2
// times in 20 when the record did not wait for the body).
func TestRecordNamesInjectionIntoAStreamedBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		io.ReadFull(r.Body, buf) // the placeholder, then answer at once, leaving the rest unread
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer up.Close()
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	body := "DUMMY_GITHUB " + strings.Repeat("x", 64*smallBody)
	const n = 20
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("POST", up.URL, strings.NewReader(body))
		resp, err := p.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, r := range p.records(t, n) {
		if !slices.Equal(r.Credentials, []string{"github"}) {
			t.Fatalf("a record does not name the credential injected into its streamed body: %+v", r)
		}
	}
}
