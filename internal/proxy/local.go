package proxy

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/version"
)

// usageText is the answer to an origin-form request for anything but the
// proxy's own endpoints: it explains the three ways in.
const usageText = `this is the SLAPENIR egress proxy; it has no page at this path. Use it in one of three ways: ` +
	`(1) as an HTTP proxy: HTTP_PROXY=http://<proxy>:3000 or curl -x http://<proxy>:3000 http://example.com/; ` +
	`(2) with CONNECT for HTTPS: HTTPS_PROXY=http://<proxy>:3000; ` +
	`(3) with a target header: curl -H "X-Target-URL: http://host:port" http://<proxy>:3000/path. ` +
	`Its own endpoints are /health, /ca.pem, /placeholders and /explain; its metrics are served on metrics.listen.`

// serveLocal answers origin-form requests without a target: the proxy's own
// endpoints, and a 400 that explains the proxy to anything else.
func (s *Server) serveLocal(w http.ResponseWriter, r *http.Request, x *exchange) {
	switch r.URL.Path {
	case "/health":
		x.quiet = true
		s.serveHealth(w, x)
	case "/ca.pem":
		x.quiet = true
		if s.intercept == nil {
			writeError(w, x, http.StatusNotFound, "this proxy does not intercept TLS, so it has no interception CA to trust", "no_interception")
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.intercept.Authority.CertPEM())
	case "/placeholders":
		x.quiet = true
		// An agent is shown the placeholders of the credentials its role
		// may use.
		list := []secrets.Placeholder{}
		if c := x.st.creds; c != nil {
			for i, p := range c.vault.Placeholders() {
				if x.role.grants(i) {
					list = append(list, p)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case "/explain":
		x.quiet = true
		s.serveOwnExplain(w, r, x, guardFrom(r.Context()))
	case "/metrics":
		// The metrics name every agent's identity and role, its refusals
		// and its certificate's expiry: served to agents, they would tell
		// each agent about all the others.
		writeError(w, x, http.StatusForbidden, "the proxy's metrics are not served to agents (they name every agent); the operator scrapes them on metrics.listen", "metrics_elsewhere")
	default:
		writeError(w, x, http.StatusBadRequest, usageText, "not_a_proxy_request")
	}
}

// MetricsHandler serves the proxy's Prometheus metrics, on metrics.listen:
// never on the agents' port.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{})
}

type health struct {
	Status        string  `json:"status"`
	Version       string  `json:"version"`
	Config        string  `json:"config"` // the configuration's version (config.Config.Version)
	UptimeSeconds float64 `json:"uptime_seconds"`
	Audit         string  `json:"audit"`
}

// serveHealth reports liveness; it answers 503 while the audit log is
// failing, because the proxy refuses all traffic then.
func (s *Server) serveHealth(w http.ResponseWriter, x *exchange) {
	h := health{Status: "ok", Version: version.Short(), Config: x.st.version, UptimeSeconds: time.Since(s.started).Seconds(), Audit: "ok"}
	code := http.StatusOK
	err := s.audit.Healthy()
	if err == nil {
		err = s.disk.err()
	}
	if err != nil {
		h.Status, h.Audit, code = "degraded", err.Error(), http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}
