package proxy

import "net/http"

// innerMaxStreams is how many requests one intercepted HTTP/2 tunnel may
// have open at once (SETTINGS_MAX_CONCURRENT_STREAMS, enforced by net/http:
// a stream past it is refused before a handler runs). net/http's default
// is 250, and an identity may hold max_tunnels_per_identity tunnels (64 by
// default): 16,000 requests in flight for one agent, each with its
// goroutines, buffers and upstream connection, against a proxy every agent
// shares. The tools agents run (git, curl, pip, LLM clients) keep a handful
// of streams open, so 32 costs them nothing and bounds an identity's
// intercepted requests to max_tunnels_per_identity × 32 (and all of its
// requests, every way in, to max_requests_per_identity). net/http's
// rapid-reset defence (CVE-2023-44487) is tied to the same number: it runs
// at most this many handlers per connection, and closes a connection that
// queues four times as many.
const innerMaxStreams = 32

// innerHTTP2 is the HTTP/2 configuration of the servers inside intercepted
// tunnels.
func innerHTTP2() *http.HTTP2Config {
	return &http.HTTP2Config{MaxConcurrentStreams: innerMaxStreams}
}

// maxConnsPerUpstream bounds one role's connections to one upstream host,
// dialling, in use and idle together (http.Transport.MaxConnsPerHost). A
// request cancelled while its connection is being dialled does not cancel
// the dial: net/http finishes it for the idle pool. Without a bound, an
// agent that opens streams and resets each at once (CVE-2023-44487, from
// inside an intercepted HTTP/2 tunnel, or by dropping HTTP/1 connections)
// keeps starting TLS handshakes upstream faster than they end: thousands in
// flight from one tunnel whose own handlers never number more than
// innerMaxStreams. With it, a request past the bound waits for a connection
// without a goroutine of its own, and leaves the queue when cancelled. 256
// is far above what one upstream serves at once to one role (Ollama runs a
// few requests in parallel; the blind tunnels, which hold most long
// connections, do not use the transport).
const maxConnsPerUpstream = 256

// boundUpstreamConns applies maxConnsPerUpstream to a role's transport.
func boundUpstreamConns(t *http.Transport) *http.Transport {
	t.MaxConnsPerHost = maxConnsPerUpstream
	return t
}
