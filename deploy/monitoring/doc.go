// Package monitoring holds the tests of the Prometheus configuration,
// alert rules and Grafana dashboard in this directory: a real Prometheus
// (Debian's) scrapes a real proxy carrying traffic, and every expression
// of the dashboard and the rules must return data through its HTTP API.
// It has no code of its own.
package monitoring
