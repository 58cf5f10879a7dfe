package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/secrets"
)

// testProxy is a real proxy on a loopback port with its audit log in a file.
type testProxy struct {
	srv       *Server
	addr      string
	auditFile string
	audit     *audit.Logger
	done      chan error
}

// loopbackConfig is the default configuration with loopback upstreams allowed,
// since every upstream in these tests listens on 127.0.0.1.
func loopbackConfig() *config.Config {
	cfg := config.Default()
	cfg.Policy.PrivateAllow = append(cfg.Policy.PrivateAllow, "127.0.0.1/32")
	cfg.Limits.RatePerSecond = 0
	return cfg
}

func startProxy(t *testing.T, cfg *config.Config) *testProxy {
	t.Helper()
	if cfg == nil {
		cfg = loopbackConfig()
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	af := cfg.Audit.File
	if af == "" {
		af = filepath.Join(t.TempDir(), "audit.jsonl")
	}
	al, err := audit.Open(audit.Options{File: af})
	if err != nil {
		t.Fatal(err)
	}
	return serveProxy(t, Options{Config: cfg, Audit: al, AuditFile: af}, af)
}

// startProxyOpts starts a proxy with extra options (interception, TLS…).
func startProxyOpts(t testing.TB, cfg *config.Config, o Options) *testProxy {
	t.Helper()
	af := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(audit.Options{File: af})
	if err != nil {
		t.Fatal(err)
	}
	o.Config, o.Audit, o.AuditFile = cfg, al, af
	return serveProxy(t, o, af)
}

func startProxyWithAudit(t *testing.T, cfg *config.Config, al *audit.Logger, af string) *testProxy {
	t.Helper()
	return serveProxy(t, Options{Config: cfg, Audit: al}, af)
}

func serveProxy(t testing.TB, o Options, af string) *testProxy {
	t.Helper()
	al := o.Audit
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{srv: srv, addr: ln.Addr().String(), auditFile: af, audit: al, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = al.Close()
		if af != "" {
			explainAgrees(t, srv, readRecords(t, af))
		}
	})
	return p
}

func (p *testProxy) url() *url.URL { return &url.URL{Scheme: "http", Host: p.addr} }

// scrape reads the proxy's metrics as the operator's Prometheus does, from
// the handler metrics.listen serves: the agents' port refuses them.
func (p *testProxy) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// client uses the proxy as its HTTP(S) proxy.
func (p *testProxy) client() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p.url()), DisableCompression: true}}
}

// records reads the audit log, waiting until at least n records are there
// (a record is written when its exchange ends, which can trail the response).
func (p *testProxy) records(t *testing.T, n int) []audit.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := readRecords(t, p.auditFile)
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) < n {
				t.Fatalf("audit log has %d records, want at least %d", len(recs), n)
			}
			return recs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastRecord waits for the n-th record and returns it.
func (p *testProxy) lastRecord(t *testing.T, n int) audit.Record {
	recs := p.records(t, n)
	return recs[n-1]
}

// readRecords returns the outcome records of the log: one per request,
// tunnel and refusal. The write-ahead records (phase start) that precede
// each allowed request's outcome are left out; readAllRecords has them.
func readRecords(t testing.TB, file string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, r := range readAllRecords(t, file) {
		if r.Phase != audit.PhaseStart {
			out = append(out, r)
		}
	}
	return out
}

func readAllRecords(t testing.TB, file string) []audit.Record {
	t.Helper()
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line is not JSON: %v: %q", err, sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// decodeError reads the proxy's JSON error reply.
func decodeError(t *testing.T, resp *http.Response) errorReply {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error reply has Content-Type %q, want application/json", ct)
	}
	var e errorReply
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("error reply is not the JSON error shape: %v", err)
	}
	if e.Error == "" || e.Reason == "" {
		t.Fatalf("error reply lacks error or reason: %+v", e)
	}
	return e
}

// rawRequest sends bytes on a fresh connection and returns what came back
// until the proxy closed the connection or the deadline passed.
func rawRequest(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// defaultConfigNoRate is the embedded default (no loopback upstreams) without
// the rate limit, for tests that send many requests.
func defaultConfigNoRate() *config.Config {
	cfg := config.Default()
	cfg.Limits.RatePerSecond = 0
	return cfg
}

// rawExchange sends bytes on a fresh connection and reads one whole
// response, without waiting for the proxy to close the connection.
func rawExchange(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP response: %v", err)
	}
	return resp
}

// parseResponse reads an HTTP response out of raw bytes.
func parseResponse(t *testing.T, raw string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("not an HTTP response: %v: %q", err, raw)
	}
	return resp
}

// portOf is the port of a URL (or host:port) in a test table.
func portOf(t *testing.T, target string) int {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Port() == "" {
		u = &url.URL{Host: target}
	}
	var port int
	if _, err := fmt.Sscan(u.Port(), &port); err != nil {
		t.Fatalf("no port in %q", target)
	}
	return port
}

func listenLoopback(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// findRecord returns the one record with the given reason: records are
// written when exchanges end, so their order need not be the requests'.
func findRecord(t *testing.T, recs []audit.Record, reason string) audit.Record {
	t.Helper()
	var found []audit.Record
	for _, r := range recs {
		if r.Reason == reason {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one record with reason %q, have %d in %+v", reason, len(found), recs)
	}
	return found[0]
}

// openTunnel sends CONNECT authority to the proxy and returns the connection
// once the proxy has answered 200; the caller closes it.
func openTunnel(t *testing.T, proxyAddr, authority string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", authority)
	buf := make([]byte, len("HTTP/1.1 200 Connection established\r\n\r\n"))
	if _, err := io.ReadFull(c, buf); err != nil || !strings.HasPrefix(string(buf), "HTTP/1.1 200") {
		t.Fatalf("CONNECT %s: %q %v", authority, buf, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// vaultCredentials opens, the way slapenir proxy does, a vault of the one
// credential cred whose value is read from GITHUB_TOKEN (and is value),
// closed at the test's end, and the proxy's Credentials over it. key is
// the placeholder key (nil: a random one).
func vaultCredentials(tb testing.TB, cred secrets.CredentialConfig, value string, key []byte) (*secrets.Vault, *Credentials) {
	tb.Helper()
	v, err := secrets.Open(secrets.Config{Credentials: []secrets.CredentialConfig{cred}},
		secrets.Options{LookupEnv: func(k string) (string, bool) { return value, k == "GITHUB_TOKEN" }, Logf: tb.Logf, PlaceholderKey: key})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	creds, err := NewCredentials(v)
	if err != nil {
		tb.Fatal(err)
	}
	return v, creds
}
