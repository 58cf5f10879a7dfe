package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

// DefaultProxyURL is where the proxy listens on the compose network.
const DefaultProxyURL = "https://proxy:3000"

// dialTimeout bounds reaching the proxy, TLS handshake included; past it the
// proxy is down or unreachable, and the client deserves an answer saying so.
const dialTimeout = 15 * time.Second

// Upstream is the SLAPENIR proxy as the agent reaches it: over mTLS with the
// agent's certificate when its URL is https, in plaintext when it is http (the
// proxy's --insecure-plaintext mode).
type Upstream struct {
	url    *url.URL
	tls    *reload.ResumingClient // nil for plaintext
	dialer net.Dialer
}

// NewUpstream parses proxyURL ("https://proxy:3000") and, for https, loads
// the agent's certificate, key and root CA from certs. The files are checked
// again before each new connection, so a renewed certificate is presented
// without a restart.
func NewUpstream(proxyURL string, certs certfile.Dir) (*Upstream, error) {
	u, err := url.Parse(proxyURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("relay: proxy URL %q is not http(s)://host:port (set SLAPENIR_PROXY_URL or --proxy, e.g. %s)", proxyURL, DefaultProxyURL)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "3000")
	}
	up := &Upstream{url: &url.URL{Scheme: u.Scheme, Host: u.Host}, dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}}
	if u.Scheme == "http" {
		return up, nil
	}
	kp, err := reload.NewKeyPair(certs.Cert(), certs.Key())
	if err != nil {
		return nil, fmt.Errorf("relay: the proxy %s needs the agent's certificate: %w (run \"slapenir certs bootstrap\" first, or use an http:// proxy URL if the proxy runs with --insecure-plaintext)", up.url, err)
	}
	roots, err := reload.NewCAPool(certs.Root())
	if err != nil {
		return nil, fmt.Errorf("relay: the proxy %s needs the root CA to verify it: %w (run \"slapenir certs bootstrap\" first)", up.url, err)
	}
	up.tls = reload.NewResumingClient(kp, roots, u.Hostname())
	return up, nil
}

// URL is the proxy's base URL, e.g. https://proxy:3000.
func (u *Upstream) URL() *url.URL { c := *u.url; return &c }

// dial opens a connection to the proxy, with the TLS handshake done when the
// proxy speaks TLS.
func (u *Upstream) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := u.dialer.DialContext(ctx, "tcp", u.url.Host)
	if err != nil || u.tls == nil {
		return c, err
	}
	tc := tls.Client(c, u.tls.Config())
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", u.url.Host, err)
	}
	return tc, nil
}

// Transport returns a transport whose connections all go to the proxy and
// are reused between requests. Requests to the proxy's own URL (the Ollama
// helper's, with X-Target-URL) go straight to it; with proxied set, any other
// request goes through it as absolute-form (or CONNECT for an https URL).
func (u *Upstream) Transport(proxied bool) *http.Transport {
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return u.dialer.DialContext(ctx, "tcp", u.url.Host)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// The relay passes encodings through untouched; asking for gzip on
		// the client's behalf would mean unpacking it here.
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		// No ResponseHeaderTimeout: Ollama sends no headers before its first
		// token, which can take a minute while a model loads.
	}
	if u.tls != nil {
		// DialTLSContext serves the connection to the proxy only: TLS to an
		// https target through a CONNECT keeps the default configuration.
		t.DialTLSContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return u.dial(ctx) }
	}
	if proxied {
		t.Proxy = http.ProxyURL(u.url)
	}
	return t
}
