package relay

import (
	"net/http"

	"github.com/slapenir/slapenir/internal/jsonreply"
)

// The hops a failure is blamed on. Every 502 the relay writes names one, so a
// user knows whether to look at the proxy (or the relay's certificate) or at
// the upstream the proxy was asked to reach.
const (
	hopRelayProxy  = "relay → proxy"
	hopProxyOllama = "proxy → Ollama"
)

// Reasons of the relay's own refusals.
const (
	reasonProxyUnreachable = "proxy_unreachable"
	reasonUpstreamFailed   = "upstream_failed" // the proxy's reason, kept
	reasonNotProxyRequest  = "not_a_proxy_request"
	reasonBadRequest       = "bad_request"
)

// writeFailure answers a refusal of the relay's own in the proxy's JSON
// shape (jsonreply), whose error field Ollama clients show.
func writeFailure(w http.ResponseWriter, status int, msg, reason string) {
	jsonreply.Write(w, status, jsonreply.Body{Error: msg, Reason: reason})
}
