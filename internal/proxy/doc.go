// Package proxy is the SLAPENIR gateway: the one port through which every agent
// request leaves, in three ways (absolute-form forward proxying, CONNECT tunnels,
// and origin-form requests routed by an X-Target-URL header), plus the proxy's
// own /health, /ca.pem, /placeholders and /explain. Its metrics are served to
// the operator on metrics.listen, never to agents (they name every agent).
//
// Every request goes through the same pipeline: admit (audit log healthy,
// requests in flight, rate limit), route (which of the three ways, which target), decide (policy, by name
// and then by resolved address), forward (streaming, flushed chunk by chunk),
// and record (one audit record, metrics). Credential injection and redaction
// slot into the forward step as request and response rewrites.
//
// The package owns routing, streaming and protection against malformed input.
// It does not own the policy rules (package policy), the audit format (package
// audit) or configuration parsing (package config).
package proxy
