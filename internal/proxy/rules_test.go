package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slapenir/slapenir/internal/policy"
)

// narrowed allows GETs under /repos/acme/ and POSTs to issues on host.
func narrowed(host string) []policy.Rule {
	return []policy.Rule{
		{Host: host, Methods: []string{"GET"}, Paths: []string{"/repos/acme/**"}},
		{Host: host, Methods: []string{"POST"}, Paths: []string{"/repos/acme/*/issues"}},
	}
}

type ruleCase struct {
	method, path string
	status       int
	reason       string
}

var ruleCases = []ruleCase{
	{"GET", "/repos/acme/widgets", 200, "allowlist"},
	{"POST", "/repos/acme/widgets/issues", 200, "allowlist"},
	{"DELETE", "/repos/acme/widgets", 403, "method_denied"},
	{"GET", "/repos/other/x", 403, "path_denied"},
	{"GET", "/repos/acme/../other/x", 403, "path_denied"},
	{"POST", "/repos/acme/widgets/pulls", 403, "path_denied"},
}

// TestMethodAndPathRulesOnRequests: a rule narrowed to methods and paths
// decides forward and X-Target-URL requests by their method and path, before
// anything is sent; a refusal has the one JSON shape, its reason and rule,
// and its audit record.
func TestMethodAndPathRulesOnRequests(t *testing.T) {
	up := echoUpstream(t)
	host := strings.TrimPrefix(up.URL, "http://")
	cfg := loopbackConfig()
	cfg.Policy.Allow = narrowed(host)
	p := startProxy(t, cfg)
	n := 0
	for _, mode := range []string{modeForward, modeTarget} {
		for _, c := range ruleCases {
			var req *http.Request
			if mode == modeForward {
				req, _ = http.NewRequest(c.method, up.URL+c.path, nil)
			} else {
				req, _ = http.NewRequest(c.method, "http://"+p.addr+c.path, nil)
				req.Header.Set("X-Target-URL", up.URL)
			}
			client := p.client()
			if mode == modeTarget {
				client = &http.Client{}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			n++
			rec := p.lastRecord(t, n)
			if resp.StatusCode != c.status || rec.Reason != c.reason {
				t.Errorf("%s %s %s: %d, record %s; want %d %s", mode, c.method, c.path, resp.StatusCode, rec.Reason, c.status, c.reason)
			}
			if c.status == 403 {
				e := decodeError(t, resp)
				if e.Reason != c.reason || !strings.Contains(e.Error, c.method+" "+c.path+" on "+host) {
					t.Errorf("%s %s %s: refusal %+v", mode, c.method, c.path, e)
				}
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(body), c.method+" "+c.path) {
					t.Errorf("%s %s %s: upstream saw %q", mode, c.method, c.path, body)
				}
			}
		}
	}
}

// TestPathRulesAgainstEncodedPaths: a hostile agent's raw request lines
// that hide dot segments or slashes behind percent-encoding are refused,
// and nothing reaches the upstream.
func TestPathRulesAgainstEncodedPaths(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	t.Cleanup(up.Close)
	host := strings.TrimPrefix(up.URL, "http://")
	cfg := loopbackConfig()
	cfg.Policy.Allow = narrowed(host)
	p := startProxy(t, cfg)
	for _, line := range []string{
		"GET http://" + host + "/repos/acme/%2e%2e/other/x HTTP/1.1",
		"GET http://" + host + "/repos/acme/%2E%2E/other/x HTTP/1.1",
		"GET http://" + host + "/repos/acme%2F..%2Fother/x HTTP/1.1",
		"POST http://" + host + "/repos/acme/a%2Fb/issues HTTP/1.1",
		"GET http://" + host + "/repos//acme/x HTTP/1.1",
		"get http://" + host + "/repos/acme/x HTTP/1.1",
	} {
		raw := rawRequest(t, p.addr, line+"\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(raw, "HTTP/1.1 403 ") || !strings.Contains(raw, "_denied") {
			t.Errorf("%s: %.120q, want a 403 method_denied or path_denied", line, raw)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
}

// TestMethodAndPathRulesInsideInterceptedTunnels: a tunnel is decided by
// host; each request inside an intercepted one by its method and path.
func TestMethodAndPathRulesInsideInterceptedTunnels(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	host := strings.TrimPrefix(up.URL, "https://")
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
	cfg.Policy.Allow = narrowed(host)
	p := startProxyOpts(t, cfg, Options{Intercept: interceptLoopback(t, up)})
	pool := interceptCA(t, p)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		for _, c := range ruleCases {
			req, _ := http.NewRequest(c.method, up.URL+c.path, nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || c.status == 403 && !strings.Contains(string(body), c.reason) {
				t.Errorf("h2=%v %s %s: %d %s; want %d %s", h2, c.method, c.path, resp.StatusCode, body, c.status, c.reason)
			}
		}
		tr.CloseIdleConnections()
	}
}
