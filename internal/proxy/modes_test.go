package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

// echoUpstream answers with what it received, so tests can see exactly what
// the proxy forwarded.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-URI", r.RequestURI)
		for _, h := range []string{"X-Target-URL", "Proxy-Authorization", "X-Hop", "Connection", "X-Forwarded-For"} {
			if v := r.Header.Get(h); v != "" {
				w.Header().Set("X-Seen-"+h, v)
			}
		}
		fmt.Fprintf(w, "%s %s body=%s", r.Method, r.URL.Path, body)
	}))
	t.Cleanup(up.Close)
	return up
}

func TestForwardMode(t *testing.T) {
	up := echoUpstream(t)
	p := startProxy(t, nil)
	req, _ := http.NewRequest("POST", up.URL+"/hello?q=1", strings.NewReader("ping"))
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must not be forwarded")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	resp, err := p.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST /hello body=ping" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if uri := resp.Header.Get("X-Seen-URI"); uri != "/hello?q=1" {
		t.Errorf("upstream saw request URI %q, want origin-form /hello?q=1", uri)
	}
	for _, h := range []string{"X-Seen-X-Hop", "X-Seen-Proxy-Authorization", "X-Seen-X-Forwarded-For"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("hop-by-hop or identifying header reached upstream: %s=%q", h, v)
		}
	}
	rec := p.lastRecord(t, 1)
	u, _ := url.Parse(up.URL)
	if rec.Mode != "forward" || rec.Decision != "allow" || rec.Status != 200 || rec.Method != "POST" ||
		rec.Host != "127.0.0.1" || fmt.Sprint(rec.Port) != u.Port() || rec.Path != "/hello?q=1" || rec.BytesIn != 4 || rec.BytesOut != int64(len(body)) {
		t.Fatalf("audit record wrong: %+v", rec)
	}
	if rec.RequestID == "" || rec.Client == "" || rec.Reason == "" || rec.Time.IsZero() {
		t.Fatalf("audit record lacks id, client, reason or time: %+v", rec)
	}
}

func TestTargetMode(t *testing.T) {
	up := echoUpstream(t)
	p := startProxy(t, nil)
	u, _ := url.Parse(up.URL)
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/tags?verbose=1", nil)
	req.Header.Set("X-Target-URL", up.URL+"/base")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "GET /base/api/tags body=" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Seen-URI"); got != "/base/api/tags?verbose=1" {
		t.Errorf("upstream saw %q, want the base path with the request path and query appended", got)
	}
	if got := resp.Header.Get("X-Seen-Host"); got != u.Host {
		t.Errorf("upstream saw Host %q, want the target's host:port %q", got, u.Host)
	}
	if got := resp.Header.Get("X-Seen-X-Target-URL"); got != "" {
		t.Errorf("X-Target-URL reached the upstream: %q", got)
	}
	rec := p.lastRecord(t, 1)
	if rec.Mode != "target" || rec.Decision != "allow" || rec.Path != "/base/api/tags?verbose=1" || rec.Scheme != "http" {
		t.Fatalf("audit record wrong: %+v", rec)
	}
}

// TestSeedTargetCommand runs the seed's connectivity check with the real curl:
// curl -H "X-Target-URL: http://host:port" http://proxy:3000/api/tags.
func TestSeedTargetCommand(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (apt-get install curl)")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/tags" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"models":[{"name":"qwen2.5-coder:7b"}]}`)
	}))
	defer up.Close()
	p := startProxy(t, nil)
	out, err := exec.Command(curl, "-sS", "--fail-with-body", "-H", "X-Target-URL: "+up.URL, "http://"+p.addr+"/api/tags").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "qwen2.5-coder:7b") {
		t.Fatalf("curl got %q", out)
	}
	// And curl -x, the forward-proxy way in.
	out, err = exec.Command(curl, "-sS", "--fail-with-body", "-x", "http://"+p.addr, up.URL+"/api/tags").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "qwen2.5-coder:7b") {
		t.Fatalf("curl -x: %v: %s", err, out)
	}
}

func TestConnectMode(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "over tls")
	}))
	defer up.Close()
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
	p := startProxy(t, cfg)

	c := p.client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: poolOf(up.Certificate())}
	resp, err := c.Get(up.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over tls" {
		t.Fatalf("got %q", body)
	}
	c.CloseIdleConnections()
	rec := p.lastRecord(t, 1)
	if rec.Mode != "connect" || rec.Decision != "allow" || rec.Status != 200 || rec.BytesIn == 0 || rec.BytesOut == 0 || rec.Host != "127.0.0.1" {
		t.Fatalf("tunnel record wrong: %+v", rec)
	}
}

// TestConnectEarlyData sends the first tunnelled bytes in the same packet as
// the CONNECT request; they must reach the upstream, not be lost in a buffer.
func TestConnectEarlyData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo:%s", line)
	}()
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, "http://"+ln.Addr().String())}
	p := startProxy(t, cfg)
	got := rawRequest(t, p.addr, "CONNECT "+ln.Addr().String()+" HTTP/1.1\r\nHost: "+ln.Addr().String()+"\r\n\r\nhello\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "echo:hello\n") {
		t.Fatalf("got %q", got)
	}
}

func TestLocalEndpoints(t *testing.T) {
	p := startProxy(t, nil)
	resp, err := http.Get("http://" + p.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	decodeJSON(t, resp, &h)
	if resp.StatusCode != 200 || h.Status != "ok" || h.Version == "" || h.UptimeSeconds < 0 {
		t.Fatalf("health: %d %+v", resp.StatusCode, h)
	}
	if b := p.scrape(t); !strings.Contains(b, "slapenir_proxy_tunnels_open") || !strings.Contains(b, "go_goroutines") {
		t.Fatalf("metrics lack the proxy's series: %.300s", b)
	}
	resp, err = http.Get("http://" + p.addr + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	e := decodeError(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(e.Error, "X-Target-URL") || !strings.Contains(e.Error, "CONNECT") || !strings.Contains(e.Error, "HTTP_PROXY") {
		t.Fatalf("usage reply: %d %+v", resp.StatusCode, e)
	}
}
