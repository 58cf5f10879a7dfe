package relay_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

func TestForwardAbsoluteFormReusesConnections(t *testing.T) {
	c := startChain(t, fake.Options{})
	client := c.relay.forwardClient()
	for i := 0; i < 3; i++ {
		resp, err := client.Get(c.fake.URL() + "/api/version")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), fake.Version) {
			t.Fatalf("GET /api/version through the relay: %d %s", resp.StatusCode, b)
		}
	}
	if n := c.proxy.ln.accepted.Load(); n != 1 {
		t.Errorf("proxy accepted %d connections for 3 sequential requests, want 1 reused", n)
	}
}

// startTLSOrigin is an HTTPS server on loopback and a file with its
// certificate, for clients that tunnel to it.
func startTLSOrigin(t *testing.T, body string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "origin.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func TestForwardConnectTunnelsTLS(t *testing.T) {
	origin, _ := startTLSOrigin(t, "hello over a tunnel")
	c := startChain(t, fake.Options{}, portOf(t, origin.URL))
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(c.relay.forwardURL),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	resp, err := client.Get(origin.URL + "/")
	if err != nil {
		t.Fatalf("GET %s through CONNECT: %v", origin.URL, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello over a tunnel" {
		t.Fatalf("body %q through the tunnel", b)
	}
}

// rawConnect sends a CONNECT to the relay and reads the answer.
func rawConnect(t *testing.T, relayAddr, target string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, "" // a tunnel: nothing more to read
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestForwardPassesProxyRefusals: what the proxy decides, the client reads,
// for both ways in.
func TestForwardPassesProxyRefusals(t *testing.T) {
	c := startChain(t, fake.Options{})
	resp, body := rawConnect(t, c.relay.forwardURL.Host, "10.1.2.3:443")
	var e struct{ Error, Reason string }
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Reason == "" || !strings.Contains(e.Error, "10.1.2.3") {
		t.Errorf("CONNECT to a private address: %d %s, want the proxy's 403 JSON refusal", resp.StatusCode, body)
	}
	r, err := c.relay.forwardClient().Get("http://10.1.2.3/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(b), `"reason"`) {
		t.Errorf("GET http://10.1.2.3/: %d %s, want the proxy's 403 JSON refusal", r.StatusCode, b)
	}
}

func TestForwardNamesTheFailedHop(t *testing.T) {
	c := startChain(t, fake.Options{})
	c.proxy.stop()
	resp, body := rawConnect(t, c.relay.forwardURL.Host, "example.com:443")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "relay → proxy failed") || !strings.Contains(body, `"reason":"proxy_unreachable"`) {
		t.Errorf("CONNECT with the proxy down: %d %s, want 502 naming the relay → proxy hop", resp.StatusCode, body)
	}
	r, err := c.relay.forwardClient().Get(c.fake.URL() + "/api/tags")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "relay → proxy failed") || !strings.Contains(string(b), c.proxy.url) {
		t.Errorf("GET with the proxy down: %d %s, want 502 naming the hop and the proxy URL", r.StatusCode, b)
	}
}

func TestForwardRefusesOriginForm(t *testing.T) {
	c := startChain(t, fake.Options{})
	resp, err := http.Get(c.relay.forwardURL.String() + "/api/tags")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTP_PROXY=http://") {
		t.Errorf("origin-form request to the forward proxy: %d %s, want 400 saying how to use it", resp.StatusCode, b)
	}
}

// toolEnv is an environment for curl and git that sends everything through
// the relay, with no proxy bypass for loopback.
func toolEnv(proxyURL string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "http_proxy="+proxyURL, "https_proxy="+proxyURL, "HTTPS_PROXY="+proxyURL, "GIT_TERMINAL_PROMPT=0", "HOME="+os.TempDir())
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install %s); this test runs the real tool", name, name)
	}
	return p
}

func run(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCurlThroughForwardProxy(t *testing.T) {
	needTool(t, "curl")
	ctx := testContext(t)
	origin, caFile := startTLSOrigin(t, "tunnelled")
	c := startChain(t, fake.Options{}, portOf(t, origin.URL))
	env := toolEnv(c.relay.forwardURL.String())

	if out := run(t, ctx, env, "curl", "-sS", "--fail", c.fake.URL()+"/api/tags"); !strings.Contains(out, fake.DefaultModel) {
		t.Errorf("curl http:// through the relay: %s", out)
	}
	if out := run(t, ctx, env, "curl", "-sS", "--fail", "--cacert", caFile, origin.URL+"/x"); out != "tunnelled" {
		t.Errorf("curl https:// through the relay's CONNECT: %q", out)
	}
}

// TestGitThroughForwardProxy clones refs from git http-backend (smart HTTP)
// with git's own proxy support pointed at the relay.
func TestGitThroughForwardProxy(t *testing.T) {
	git := needTool(t, "git")
	backend := "/usr/lib/git-core/git-http-backend"
	if out, err := exec.Command(git, "--exec-path").Output(); err == nil {
		backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	}
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git-http-backend not found at %s", backend)
	}
	ctx := testContext(t)
	root := t.TempDir()
	work := filepath.Join(root, "work")
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "HOME="+root)
	run(t, ctx, env, git, "init", "-q", "-b", "main", work)
	run(t, ctx, env, git, "-C", work, "commit", "-q", "--allow-empty", "-m", "first")
	head := strings.TrimSpace(run(t, ctx, env, git, "-C", work, "rev-parse", "HEAD"))
	run(t, ctx, env, git, "clone", "-q", "--bare", work, filepath.Join(root, "repo.git"))

	srv := httptest.NewServer(&cgi.Handler{
		Path: backend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	})
	t.Cleanup(srv.Close)
	f := startFake(t, fake.Options{})
	p := startProxy(t, nil)
	r := startRelay(t, p.url, "", hostOf(t, f.URL()))

	out := run(t, ctx, toolEnv(r.forwardURL.String()), git, "ls-remote", srv.URL+"/repo.git")
	if !strings.Contains(out, head+"\trefs/heads/main") {
		t.Errorf("git ls-remote through the relay = %q, want %s refs/heads/main", out, head)
	}
}
