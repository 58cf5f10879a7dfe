package relay

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The hops a failure is blamed on. Every 502 the relay writes names one, so a
// user knows whether to look at the proxy (or the relay's certificate) or at
// the upstream the proxy was asked to reach.
const (
	hopRelayProxy  = "relay → proxy"
	hopProxyOllama = "proxy → Ollama"
)

// failure is the JSON every refusal of the relay has. error is Ollama's own
// field, so Ollama clients show the message; reason is for programs, and the
// same vocabulary as the proxy's.
type failure struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

// Reasons of the relay's own refusals.
const (
	reasonProxyUnreachable = "proxy_unreachable"
	reasonUpstreamFailed   = "upstream_failed" // the proxy's reason, kept
	reasonNotProxyRequest  = "not_a_proxy_request"
	reasonBadRequest       = "bad_request"
)

func writeFailure(w http.ResponseWriter, status int, msg, reason string) {
	body, _ := json.Marshal(failure{Error: msg, Reason: reason})
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
