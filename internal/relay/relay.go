package relay

import (
	"log"
	"net/http"
	"time"
)

// Options configure a Relay.
type Options struct {
	// Upstream is the proxy every request goes to. Required.
	Upstream *Upstream
	// OllamaTarget is the X-Target-URL of the Ollama helper, as returned by
	// OllamaTarget (e.g. http://host.docker.internal:11434). Required for
	// the helper.
	OllamaTarget string
	// Logf receives operational messages; nil uses the standard logger.
	Logf func(format string, args ...any)
}

// Relay holds the forward proxy and the Ollama helper, which share the
// connections to the proxy.
type Relay struct {
	forwarder *forwarder
	helper    *helper
	tunnels   *tunnels
	proxied   *http.Transport // absolute-form, through the proxy
	direct    *http.Transport // origin-form, to the proxy itself
}

// New builds the relay's two handlers around o.Upstream.
func New(o Options) *Relay {
	logf := o.Logf
	if logf == nil {
		logf = log.Printf
	}
	r := &Relay{
		tunnels: newTunnels(o.Upstream),
		proxied: o.Upstream.Transport(true),
		direct:  o.Upstream.Transport(false),
	}
	r.forwarder = newForwarder(o.Upstream, r.proxied, r.tunnels, logf)
	r.helper = newHelper(o.Upstream, o.OllamaTarget, r.direct, logf)
	return r
}

// Forwarder is the plain-HTTP forward proxy (HTTP_PROXY/HTTPS_PROXY).
func (r *Relay) Forwarder() http.Handler { return r.forwarder }

// OllamaHelper is the Ollama helper (OLLAMA_API_BASE).
func (r *Relay) OllamaHelper() http.Handler { return r.helper }

// CloseIdleConnections drops the idle connections to the proxy, so the next
// requests open new ones with a fresh handshake (the renewed certificate is
// then presented at once rather than when the old connections expire).
func (r *Relay) CloseIdleConnections() {
	r.proxied.CloseIdleConnections()
	r.direct.CloseIdleConnections()
}

// Close cuts open tunnels and drops idle connections to the proxy. Shut the
// servers down first, so no new request arrives.
func (r *Relay) Close() {
	r.tunnels.close()
	r.CloseIdleConnections()
}

// NewServer is an http.Server for one of the relay's handlers: a bound on
// reading request heads, and no write timeout, since a local model may think
// for a minute before its first token and then stream for ten.
func NewServer(h http.Handler, logf func(format string, args ...any)) *http.Server {
	if logf == nil {
		logf = log.Printf
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          newLogger(logf),
	}
}
