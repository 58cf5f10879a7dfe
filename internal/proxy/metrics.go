package proxy

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slapenir/slapenir/internal/audit"
)

// metrics are the proxy's Prometheus series. Labels hold only bounded sets
// (mode, decision, reason, status class, identity, role) — never hosts or paths,
// which an agent could use to explode cardinality.
type metrics struct {
	gatherer    prometheus.Gatherer
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bytes       *prometheus.CounterVec
	tunnels     prometheus.Gauge
	auditErrors prometheus.Counter
	auditWrite  prometheus.Histogram
	panics      prometheus.Counter
	// What a fleet's operator watches: credentials used (by name), their
	// placeholders left alone, secrets redacted, dlp findings, upstream
	// failures by class, and each agent's certificate's time left.
	injections     *prometheus.CounterVec
	placeholders   *prometheus.CounterVec
	redactions     prometheus.Counter
	dlpFindings    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	certs          *certExpiry
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		gatherer: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_requests_total",
			Help: "Requests, tunnels and refusals, by way in, decision, reason, status class, identity and role.",
		}, []string{"mode", "decision", "reason", "code", "identity", "role"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slapenir_proxy_request_duration_seconds",
			Help:    "Time from request to the end of its response or tunnel.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120, 600},
		}, []string{"mode", "role"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_bytes_total",
			Help: "Bytes proxied, by direction (in: client to upstream, out: upstream to client) and role.",
		}, []string{"direction", "role"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slapenir_proxy_tunnels_open",
			Help: "CONNECT tunnels open now.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slapenir_proxy_audit_write_errors_total",
			Help: "Audit records that could not be written; while the log fails, the proxy refuses traffic.",
		}),
		auditWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slapenir_proxy_audit_write_seconds",
			Help:    "Time to write one audit record (encode, chain, write to the file and stdout).",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1},
		}),
		injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_injections_total",
			Help: "Requests a credential was injected into, by credential name.",
		}, []string{"credential"}),
		placeholders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_placeholders_forwarded_total",
			Help: "Requests that carried a placeholder forwarded unchanged, by credential and why (placeholder_foreign_host, placeholder_cleartext, placeholder_not_granted, placeholder_location).",
		}, []string{"credential", "problem"}),
		redactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slapenir_proxy_redactions_total",
			Help: "Real secret values redacted from responses (the redactor matches every secret in one pass and counts hits, not which secret).",
		}),
		dlpFindings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_dlp_findings_total",
			Help: "Requests in which outbound dlp found secret-shaped data, by rule and role.",
		}, []string{"rule", "role"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_upstream_errors_total",
			Help: "Requests whose upstream failed, by the class of host (credential: a credential's host; private: a private address or name allowed by private_allow; public) and of failure (dns, refused, timeout, tls, reset, aborted, other).",
		}, []string{"host_class", "kind"}),
		certs: newCertExpiry(),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slapenir_proxy_panics_total",
			Help: "Requests cut by a panic on their path (a bug: each is logged with its stack); the proxy serves on.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytes, m.tunnels, m.auditErrors, m.auditWrite, m.panics,
		m.injections, m.placeholders, m.redactions, m.dlpFindings, m.upstreamErrors, m.certs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(rec *audit.Record, d time.Duration) {
	code := "none"
	if rec.Status > 0 {
		code = strconv.Itoa(rec.Status/100) + "xx"
	}
	m.requests.WithLabelValues(rec.Mode, rec.Decision, rec.Reason, code, rec.Identity, rec.Role).Inc()
	m.duration.WithLabelValues(rec.Mode, rec.Role).Observe(d.Seconds())
	m.bytes.WithLabelValues("in", rec.Role).Add(float64(rec.BytesIn))
	m.bytes.WithLabelValues("out", rec.Role).Add(float64(rec.BytesOut))
	for _, c := range rec.Credentials {
		m.injections.WithLabelValues(c).Inc()
	}
	for _, p := range rec.Placeholders {
		m.placeholders.WithLabelValues(p.Credential, p.Problem).Inc()
	}
	if rec.Redactions > 0 {
		m.redactions.Add(float64(rec.Redactions))
	}
	for _, rule := range rec.DLP {
		m.dlpFindings.WithLabelValues(rule, rec.Role).Inc()
	}
}

// certExpiry is the seconds each identity's client certificate has left,
// computed when scraped from the latest certificate seen for it. An
// identity whose certificate expired a day ago and has not come back is
// dropped, so the series of agents long gone do not pile up.
type certExpiry struct {
	desc     *prometheus.Desc
	mu       sync.Mutex
	notAfter map[string]time.Time
}

func newCertExpiry() *certExpiry {
	return &certExpiry{
		desc: prometheus.NewDesc("slapenir_proxy_client_cert_expiry_seconds",
			"Seconds until the client certificate an identity last presented expires (negative: expired).", []string{"identity"}, nil),
		notAfter: map[string]time.Time{},
	}
}

// note records the certificate an identity presented.
func (c *certExpiry) note(identity string, notAfter time.Time) {
	c.mu.Lock()
	if !c.notAfter[identity].Equal(notAfter) {
		c.notAfter[identity] = notAfter
	}
	c.mu.Unlock()
}

func (c *certExpiry) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certExpiry) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, na := range c.notAfter {
		left := na.Sub(now)
		if left < -24*time.Hour {
			delete(c.notAfter, id)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, left.Seconds(), id)
	}
}
