package relay_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/relay"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// testTimeout bounds every test: a relay that buffered a stream would hang
// the gated streaming tests instead of failing them.
const testTimeout = 2 * time.Minute

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

// countingListener counts accepted connections, to show connection reuse.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// testProxy is the real SLAPENIR proxy on a loopback port.
type testProxy struct {
	ln        *countingListener
	url       string
	stop      func()
	auditFile string // the proxy's audit log, one JSON record per line
}

// startProxy runs the proxy with loopback upstreams allowed (every upstream
// in these tests is on 127.0.0.1), tls nil for plaintext, and CONNECT
// allowed to connectPorts besides 443.
func startProxy(t testing.TB, tlsOpts *proxy.TLSOptions, connectPorts ...int) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	p := proxytest.Start(t, proxy.Options{Config: proxytest.LoopbackConfig(connectPorts...), TLS: tlsOpts}, cl)
	// A short grace: tests stop the proxy to cut streams in flight.
	return &testProxy{ln: cl, url: p.URL, auditFile: p.AuditFile, stop: func() { p.Stop(50 * time.Millisecond) }}
}

// startFake runs a fake Ollama on loopback, where its Host rule applies.
func startFake(t testing.TB, opts fake.Options) *fake.Server {
	t.Helper()
	f, err := fake.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// testRelay is a relay with both listeners on free loopback ports.
type testRelay struct {
	relay      *relay.Relay
	forwardURL *url.URL
	helperURL  *url.URL
}

func startRelay(t testing.TB, proxyURL string, certs certfile.Dir, ollamaHost string) *testRelay {
	t.Helper()
	up, err := relay.NewUpstream(proxyURL, certs)
	if err != nil {
		t.Fatal(err)
	}
	target, err := relay.OllamaTarget(ollamaHost)
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(relay.Options{Upstream: up, OllamaTarget: target, Logf: t.Logf})
	tr := &testRelay{relay: r}
	var servers []*http.Server
	for _, h := range []struct {
		handler http.Handler
		u       **url.URL
	}{{r.Forwarder(), &tr.forwardURL}, {r.OllamaHelper(), &tr.helperURL}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := relay.NewServer(h.handler, t.Logf)
		servers = append(servers, srv)
		go func() { _ = srv.Serve(ln) }()
		*h.u = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	}
	t.Cleanup(func() {
		for _, s := range servers {
			_ = s.Close()
		}
		r.Close()
	})
	return tr
}

// hostOf is the host:port of a URL string.
func hostOf(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// ollamaClient is the real Ollama Go client pointed at the helper.
func (r *testRelay) ollamaClient() *api.Client {
	return api.NewClient(r.helperURL, &http.Client{Transport: &http.Transport{Proxy: nil}})
}

// forwardClient uses the relay's forward proxy as its HTTP(S) proxy.
func (r *testRelay) forwardClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(r.forwardURL), DisableCompression: true}}
}

// chain is fake ← proxy ← relay, all on loopback, the proxy in plaintext.
type chain struct {
	fake  *fake.Server
	proxy *testProxy
	relay *testRelay
}

func startChain(t *testing.T, opts fake.Options, connectPorts ...int) *chain {
	t.Helper()
	f := startFake(t, opts)
	p := startProxy(t, nil, connectPorts...)
	r := startRelay(t, p.url, "", hostOf(t, f.URL()))
	return &chain{fake: f, proxy: p, relay: r}
}

// statusOf returns the HTTP status of an Ollama client error, or 0.
func statusOf(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// portOf is the port of a URL string.
func portOf(t testing.TB, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("no port in %q", raw)
	}
	return port
}
