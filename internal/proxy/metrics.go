package proxy

import (
	"strconv"
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
	panics      prometheus.Counter
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
		}, []string{"mode"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slapenir_proxy_bytes_total",
			Help: "Bytes proxied, by direction (in: client to upstream, out: upstream to client).",
		}, []string{"direction"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slapenir_proxy_tunnels_open",
			Help: "CONNECT tunnels open now.",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slapenir_proxy_audit_write_errors_total",
			Help: "Audit records that could not be written; while the log fails, the proxy refuses traffic.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slapenir_proxy_panics_total",
			Help: "Requests cut by a panic on their path (a bug: each is logged with its stack); the proxy serves on.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.bytes, m.tunnels, m.auditErrors, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(rec *audit.Record, d time.Duration) {
	code := "none"
	if rec.Status > 0 {
		code = strconv.Itoa(rec.Status/100) + "xx"
	}
	m.requests.WithLabelValues(rec.Mode, rec.Decision, rec.Reason, code, rec.Identity, rec.Role).Inc()
	m.duration.WithLabelValues(rec.Mode).Observe(d.Seconds())
	m.bytes.WithLabelValues("in").Add(float64(rec.BytesIn))
	m.bytes.WithLabelValues("out").Add(float64(rec.BytesOut))
}
