package relay

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/slapenir/slapenir/internal/safetext"
)

// targetHeader routes an origin-form request at the proxy (the seed's path).
const targetHeader = "X-Target-URL"

// helper is the Ollama helper: origin-form Ollama API requests go to the
// proxy with X-Target-URL naming Ollama; the proxy appends path and query.
type helper struct {
	proxy   *url.URL
	target  string
	reverse *httputil.ReverseProxy
}

func newHelper(up *Upstream, target string, t http.RoundTripper, logf func(string, ...any)) *helper {
	h := &helper{proxy: up.URL(), target: target}
	h.reverse = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = h.proxy.Scheme
			pr.Out.URL.Host = h.proxy.Host
			// The proxy sets the Host Ollama sees to the target's
			// host:port, which Ollama accepts for loopback, private IPs,
			// localhost and *.internal alike.
			pr.Out.Host = ""
			pr.Out.Header.Set(targetHeader, h.target)
		},
		Transport: t,
		// Flush each chunk at once: every NDJSON line or SSE event is a
		// token someone is waiting for.
		FlushInterval:  -1,
		ModifyResponse: h.inspect,
		ErrorHandler:   h.unreachable,
		ErrorLog:       newLogger(logf),
	}
	return h
}

func (h *helper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || r.URL.IsAbs() {
		writeFailure(w, http.StatusBadRequest, fmt.Sprintf(
			"ollama helper: %s %s is a proxy request; this port takes Ollama API requests (OLLAMA_API_BASE=http://%s); use the relay's forward proxy for HTTP_PROXY",
			r.Method, safetext.Cut(r.RequestURI, 200), r.Host), reasonNotProxyRequest)
		return
	}
	fullDuplex(w)
	h.reverse.ServeHTTP(w, r)
}

// unreachable answers a request that never got a response from the proxy.
func (h *helper) unreachable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	writeFailure(w, http.StatusBadGateway, fmt.Sprintf(
		"ollama helper: %s failed: cannot reach the SLAPENIR proxy at %s (for Ollama at %s): %v; check that the proxy runs and SLAPENIR_PROXY_URL names it",
		hopRelayProxy, h.proxy, h.target, safetext.URLError(err)), reasonProxyUnreachable)
}
