// Package proxy is the SLAPENIR gateway: the one port through which every agent
// request leaves, in three ways (absolute-form forward proxying, CONNECT tunnels,
// and origin-form requests routed by an X-Target-URL header), plus the proxy's
// own /health, /ca.pem, /placeholders and /explain. Its metrics are served to
// the operator on metrics.listen, never to agents (they name every agent).
//
// Every request goes through the same pipeline: admit (audit log healthy,
// requests in flight, rate limit); plan (plan.go: one pure function of the
// compiled configuration, a RuleSet, and the request line parses the
// destination once and decides the role's name-level decision,
// interception, DLP mode and what becomes of each credential's
// placeholder); execute (refuse as planned, scan, dial the planned
// destination with the address check, forward streaming, flushed chunk by
// chunk, or tunnel); and record (one audit record made from the plan and
// the outcome, and metrics). policy explain and /explain read the same
// plan. Credential injection and redaction slot into the forward step as
// request and response rewrites.
//
// The package owns routing, streaming and protection against malformed input,
// and compiles a configuration's rule strings into its RuleSet once per load
// (compile). It does not own the policy rules (package policy), the audit
// format (package audit) or configuration parsing and validation (package
// config).
package proxy
