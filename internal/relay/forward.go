package relay

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/slapenir/slapenir/internal/safetext"
)

// forwarder is the plain-HTTP forward proxy for HTTP_PROXY/HTTPS_PROXY:
// absolute-form requests go on to the proxy as absolute-form over reused
// connections; CONNECT becomes a tunnel through the proxy (tunnel.go).
type forwarder struct {
	proxy   *url.URL
	reverse *httputil.ReverseProxy
	tunnels *tunnels
}

func newForwarder(up *Upstream, t http.RoundTripper, tn *tunnels, logf func(string, ...any)) *forwarder {
	f := &forwarder{proxy: up.URL(), tunnels: tn}
	f.reverse = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The request is already absolute; the transport's Proxy sends
			// it to the SLAPENIR proxy as it is, Host included.
			pr.Out.Host = pr.In.Host
		},
		Transport:     t,
		FlushInterval: -1,
		ErrorHandler:  f.unreachable,
		ErrorLog:      newLogger(logf),
	}
	return f
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		f.tunnels.serve(w, r)
	case !r.URL.IsAbs():
		writeFailure(w, http.StatusBadRequest, fmt.Sprintf(
			"relay: %s %s is not a proxy request; this port is a forward proxy: set HTTP_PROXY=http://%s and HTTPS_PROXY=http://%s (Ollama clients use the helper's port instead)",
			r.Method, safetext.Cut(r.RequestURI, 200), r.Host, r.Host), reasonNotProxyRequest)
	case r.URL.Scheme != "http" && r.URL.Scheme != "https":
		writeFailure(w, http.StatusBadRequest, fmt.Sprintf("relay: request URL %q has unsupported scheme %q (want http or https)", safetext.Cut(r.URL.Redacted(), 200), r.URL.Scheme), reasonBadRequest)
	default:
		fullDuplex(w)
		f.reverse.ServeHTTP(w, r)
	}
}

func (f *forwarder) unreachable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	writeFailure(w, http.StatusBadGateway, fmt.Sprintf(
		"relay: %s failed: cannot reach the SLAPENIR proxy at %s (for %s): %v; check that the proxy runs and SLAPENIR_PROXY_URL names it",
		hopRelayProxy, f.proxy, r.URL.Scheme+"://"+r.URL.Host, safetext.URLError(err)), reasonProxyUnreachable)
}
