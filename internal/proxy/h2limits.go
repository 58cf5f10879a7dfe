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
