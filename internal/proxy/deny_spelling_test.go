package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/policy"
)

// nginxServer is Debian's nginx serving a directory tree on a loopback
// port: a real upstream that resolves dot segments, merges slashes and
// decodes escapes before it looks a path up, as most web servers do.
type nginxServer struct {
	addr      string // 127.0.0.1:port
	accessLog string // one line per request nginx received
	markers   int    // marker requests sent by requests
}

// startNginx runs nginx in the foreground with a configuration of its own
// in a temp directory, serving files (path → content) until the test ends.
// It skips the test when nginx is not installed.
func startNginx(t *testing.T, files map[string]string) *nginxServer {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Skip("nginx is not installed (Debian: apt-get install nginx): this test needs a real upstream that resolves dot segments and merges slashes")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A free port: nginx cannot report the one it got for ":0".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &nginxServer{addr: addr, accessLog: filepath.Join(dir, "access.log")}
	user := ""
	if os.Geteuid() == 0 {
		// Root's single nginx process would otherwise serve as nobody,
		// who cannot read a temp directory.
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 64; }
http {
	access_log %[2]s/access.log;
	client_body_temp_path %[2]s/tmp;
	proxy_temp_path %[2]s/tmp;
	fastcgi_temp_path %[2]s/tmp;
	uwsgi_temp_path %[2]s/tmp;
	scgi_temp_path %[2]s/tmp;
	server {
		listen %[3]s;
		root %[4]s;
		index index.html;
	}
}
`, user, dir, addr, root)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", cf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return n
		}
		select {
		case <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s%s", out.String(), errLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requests is how many requests nginx has logged, not counting its own
// markers. nginx writes a request's log line after it has sent the
// response, so a count read at once could miss the last one: a marker
// request sent straight to nginx, and waited for in the log, is handled by
// its one process after everything that came before it.
func (n *nginxServer) requests(t *testing.T) int {
	t.Helper()
	n.markers++
	marker := fmt.Sprintf("/.marker-%d", n.markers)
	sendHead(t, n.addr, "GET "+marker+" HTTP/1.1\r\nHost: "+n.addr+"\r\n")
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(n.accessLog)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), marker+" ") {
			return strings.Count(string(b), "\n") - n.markers
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not log %s within 5s", marker)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendHead sends head (a request line and headers, without the blank
// line) to addr exactly as written, and returns the response's status and
// body: no client library gets to clean the path or the method first.
func sendHead(t *testing.T, addr, head string) (int, string) {
	t.Helper()
	raw := rawRequest(t, addr, head+"Connection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%q: %v (got %q)", head, err, raw)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// adminSpellings are paths that nginx, or some other upstream, reads as
// a path under /admin: dot and empty segments, encoded dots and slashes,
// backslashes and ";" parameters.
var adminSpellings = []string{
	"/admin/users",
	"/x/../admin/users",
	"//admin/users",
	"/./admin/users",
	"/./admin",
	"/admin//users",
	"/%2e/admin/users",
	"/x/%2e%2e/admin/users",
	"/x/%2E%2E/admin/users",
	"/x/.%2e/admin/users",
	"/admin%2fusers",
	"/x/..%2Fadmin/users",
	"/%2Fadmin/users",
	"/x%5c..%5cadmin/users",
	"/x\\..\\admin/users",
	"/admin;a=b/users",
	"/x/..;/admin/users",
	"/%61dmin/users",
	"/x/%252e%252e/admin/users",
}

// TestDenyRulesFailClosedAgainstNginx: under default allow, deny rules
// narrowed to /admin/** and to DELETE refuse every spelling of an admin
// path and every case of DELETE, through the forward and the X-Target-URL
// ways in, before anything reaches nginx; and policy explain says the same
// for each. nginx itself, asked directly, serves the admin file for the
// spellings it resolves: they are real bypasses, not spellings no server
// would honour. A deny of "/private" refuses "/private/" (nginx serves the
// directory's index there), and a deny of GET "/secret/*" refuses
// "/secret/y/" and HEAD, which nginx answers as it would GET.
func TestDenyRulesFailClosedAgainstNginx(t *testing.T) {
	const secret = "ADMIN-PAGE"
	ng := startNginx(t, map[string]string{
		"admin/users":         secret + " users\n",
		"admin/index.html":    secret + " index\n",
		"public/index.html":   "public\n",
		"private/index.html":  secret + " private\n",
		"secret/x":            secret + " x\n",
		"secret/y/index.html": secret + " y\n",
	})
	for _, path := range []string{"/x/../admin/users", "//admin/users", "/admin//users", "/x/%2e%2e/admin/users", "/%2e/admin/users", "/./admin/users", "/%61dmin/users", "/x/..%2Fadmin/users"} {
		if code, body := sendHead(t, ng.addr, "GET "+path+" HTTP/1.1\r\nHost: "+ng.addr+"\r\n"); code != http.StatusOK || !strings.Contains(body, secret) {
			t.Fatalf("nginx does not resolve %s to the admin file (%d %q): the test's upstream is not what it needs", path, code, body)
		}
	}
	for _, path := range []string{"/private/", "/secret/y/"} {
		if code, body := sendHead(t, ng.addr, "GET "+path+" HTTP/1.1\r\nHost: "+ng.addr+"\r\n"); code != http.StatusOK || !strings.Contains(body, secret) {
			t.Fatalf("nginx does not serve %s (%d %q): the test's upstream is not what it needs", path, code, body)
		}
	}
	if raw := rawRequest(t, ng.addr, "HEAD /secret/x HTTP/1.1\r\nHost: "+ng.addr+"\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(raw, "HTTP/1.1 200 ") || !strings.Contains(raw, fmt.Sprintf("Content-Length: %d", len(secret+" x\n"))) {
		t.Fatalf("nginx does not answer HEAD /secret/x as GET (%q): the test's upstream is not what it needs", raw)
	}

	cfg := loopbackConfig()
	cfg.Policy.Deny = []policy.Rule{
		{Host: ng.addr, Paths: []string{"/admin/**"}},
		{Host: ng.addr, Methods: []string{"DELETE"}},
		{Host: ng.addr, Paths: []string{"/private"}},
		{Host: ng.addr, Methods: []string{"GET"}, Paths: []string{"/secret/*"}},
	}
	p := startProxy(t, cfg)
	ex, err := NewRuleSet(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}

	refused := func(how, method, path, head, reason string) {
		t.Helper()
		before := ng.requests(t)
		code, body := sendHead(t, p.addr, head)
		// A reply to HEAD has no body to carry the reason; the audit
		// record and explain still must.
		if code != http.StatusForbidden || method != "HEAD" && !strings.Contains(body, reason) {
			t.Errorf("%s %s %s: proxy answered %d %q, want 403 %s", how, method, path, code, body, reason)
		}
		if after := ng.requests(t); after != before {
			t.Errorf("%s %s %s: nginx received it (%d requests logged, was %d)", how, method, path, after, before)
		}
		x, err := ex.Explain(context.Background(), method, "http://"+ng.addr+path, "", false)
		if err != nil {
			t.Errorf("explain %s %s: %v", method, path, err)
		} else if x.Decision != decisionDeny || x.Reason != reason {
			t.Errorf("explain %s %s: %s %s, but the proxy refused it (%s)", method, path, x.Decision, x.Reason, reason)
		}
	}
	for _, path := range adminSpellings {
		refused("forward", "GET", path, "GET http://"+ng.addr+path+" HTTP/1.1\r\nHost: "+ng.addr+"\r\n", policy.ReasonPathDenied)
		refused("X-Target-URL", "GET", path, "GET "+path+" HTTP/1.1\r\nHost: "+p.addr+"\r\nX-Target-URL: http://"+ng.addr+"\r\n", policy.ReasonPathDenied)
	}
	for _, method := range []string{"DELETE", "delete", "Delete"} {
		refused("forward", method, "/public/index.html", method+" http://"+ng.addr+"/public/index.html HTTP/1.1\r\nHost: "+ng.addr+"\r\n", policy.ReasonMethodDenied)
		refused("X-Target-URL", method, "/public/index.html", method+" /public/index.html HTTP/1.1\r\nHost: "+p.addr+"\r\nX-Target-URL: http://"+ng.addr+"\r\n", policy.ReasonMethodDenied)
	}
	slashAndHead := []struct{ method, path string }{
		{"GET", "/private/"},
		{"GET", "/secret/y/"},
		{"HEAD", "/secret/x"},
		{"HEAD", "/secret/y/"},
	}
	for _, c := range slashAndHead {
		refused("forward", c.method, c.path, c.method+" http://"+ng.addr+c.path+" HTTP/1.1\r\nHost: "+ng.addr+"\r\n", policy.ReasonPathDenied)
		refused("X-Target-URL", c.method, c.path, c.method+" "+c.path+" HTTP/1.1\r\nHost: "+p.addr+"\r\nX-Target-URL: http://"+ng.addr+"\r\n", policy.ReasonPathDenied)
	}

	// What the rules do not name still goes through, and nginx sees it.
	before := ng.requests(t)
	if code, body := sendHead(t, p.addr, "GET http://"+ng.addr+"/public/index.html HTTP/1.1\r\nHost: "+ng.addr+"\r\n"); code != http.StatusOK || body != "public\n" {
		t.Errorf("GET /public/index.html through the proxy: %d %q", code, body)
	}
	if after := ng.requests(t); after != before+1 {
		t.Errorf("nginx logged %d requests for one allowed request", after-before)
	}

	// Every refusal has its audit record with the rule's reason.
	pathDenied := 2 * (len(adminSpellings) + len(slashAndHead))
	want := pathDenied + 2*3 + 1
	denied := map[string]int{}
	for _, r := range p.records(t, want) {
		if r.Decision == "deny" {
			denied[r.Reason]++
		}
	}
	if denied[policy.ReasonPathDenied] != pathDenied || denied[policy.ReasonMethodDenied] != 6 {
		t.Errorf("audit: %v refusals, want %d path_denied and 6 method_denied", denied, pathDenied)
	}
}

// TestRulesJudgeWhatTheUpstreamReceives: the proxy decides on the path as
// it is sent, still escaped, and on the method in the case it is sent.
// Go's ServeMux (like many routers) does not split a segment at "%2F", so
// "/api/a%2Fb/delete" reaches its "/api/{id}/delete" handler: a deny rule
// for "/api/*/delete" that judged the decoded "/api/a/b/delete" (two
// segments where the rule wants one) would let it through. An allow rule
// for GET does not pass "get", which an upstream may not read as GET, and
// policy explain says the same as the proxy for both.
func TestRulesJudgeWhatTheUpstreamReceives(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{id}/delete", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "deleted %s", r.PathValue("id"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", r.Method, r.URL.EscapedPath()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	up := ln.Addr().String()
	if code, body := sendHead(t, up, "GET /api/a%2Fb/delete HTTP/1.1\r\nHost: "+up+"\r\n"); code != http.StatusOK || body != "deleted a/b" {
		t.Fatalf("the upstream does not route /api/a%%2Fb/delete to its delete handler (%d %q): the test needs one that does", code, body)
	}

	// A second name for the same upstream carries the allow rule.
	_, port, _ := net.SplitHostPort(up)
	cfg := loopbackConfig()
	cfg.Policy.Deny = []policy.Rule{{Host: up, Paths: []string{"/api/*/delete"}}}
	cfg.Policy.Allow = []policy.Rule{{Host: "localhost:" + port, Methods: []string{"GET"}}}
	cfg.Policy.PrivateAllow = append(cfg.Policy.PrivateAllow, "localhost")
	p := startProxy(t, cfg)
	ex, err := NewRuleSet(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, url, reason string }{
		{"GET", "http://" + up + "/api/a%2Fb/delete", policy.ReasonPathDenied},
		{"GET", "http://" + up + "/api/a%2fb/delete", policy.ReasonPathDenied},
		{"get", "http://localhost:" + port + "/x", policy.ReasonMethodDenied},
		{"Get", "http://localhost:" + port + "/x", policy.ReasonMethodDenied},
	} {
		code, body := sendHead(t, p.addr, c.method+" "+c.url+" HTTP/1.1\r\nHost: "+strings.TrimPrefix(c.url, "http://")[:strings.Index(strings.TrimPrefix(c.url, "http://"), "/")]+"\r\n")
		if code != http.StatusForbidden || !strings.Contains(body, c.reason) {
			t.Errorf("%s %s: proxy answered %d %q, want 403 %s", c.method, c.url, code, body, c.reason)
		}
		x, err := ex.Explain(context.Background(), c.method, c.url, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if x.Decision != decisionDeny || x.Reason != c.reason {
			t.Errorf("explain %s %s: %s %s, want deny %s as the proxy does", c.method, c.url, x.Decision, x.Reason, c.reason)
		}
	}
	if code, body := sendHead(t, p.addr, "GET http://localhost:"+port+"/x HTTP/1.1\r\nHost: localhost:"+port+"\r\n"); code != http.StatusOK || body != "GET /x" {
		t.Errorf("GET through the allow rule: %d %q", code, body)
	}
}

// TestDenyRulesFailClosedInsideInterceptedTunnels: the third way in. Each
// spelling of an admin path and each case of DELETE, written raw inside an
// intercepted CONNECT tunnel, is refused by the narrowed deny rules before
// anything reaches the upstream.
func TestDenyRulesFailClosedInsideInterceptedTunnels(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.EscapedPath())
	}))
	up.StartTLS()
	defer up.Close()
	host := strings.TrimPrefix(up.URL, "https://")
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
	cfg.Policy.Deny = []policy.Rule{{Host: host, Paths: []string{"/admin/**"}}, {Host: host, Methods: []string{"DELETE"}}}
	p := startProxyOpts(t, cfg, Options{Intercept: interceptLoopback(t, up)})
	pool := interceptCA(t, p)

	inTunnel := func(line string) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %s: %v %v", host, resp, err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
		fmt.Fprintf(tc, "%s\r\nHost: %s\r\nConnection: close\r\n\r\n", line, host)
		resp, err = http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("%s inside the tunnel: %v", line, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range adminSpellings {
		if code, body := inTunnel("GET " + path + " HTTP/1.1"); code != http.StatusForbidden || !strings.Contains(body, policy.ReasonPathDenied) {
			t.Errorf("GET %s inside the tunnel: %d %q, want 403 path_denied", path, code, body)
		}
	}
	for _, m := range []string{"DELETE", "delete", "Delete"} {
		if code, body := inTunnel(m + " /public HTTP/1.1"); code != http.StatusForbidden || !strings.Contains(body, policy.ReasonMethodDenied) {
			t.Errorf("%s /public inside the tunnel: %d %q, want 403 method_denied", m, code, body)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
	if code, body := inTunnel("GET /public HTTP/1.1"); code != http.StatusOK || body != "GET /public" {
		t.Errorf("GET /public inside the tunnel: %d %q", code, body)
	}
}
