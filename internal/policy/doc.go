// Package policy decides whether a request may leave the proxy: by name
// (deny list, telemetry list, allow list, CONNECT ports, default) and, after
// DNS, by address (loopback, private, link-local, CGNAT, metadata and other
// non-public ranges unless private_allow names them). Its Dialer resolves,
// checks and dials exactly the address it checked, so a name cannot be
// rebound to a private address between the check and the connection.
//
// Every Decision carries a stable snake_case reason for the audit log. The
// package must not write audit records, answer HTTP, or read configuration
// files: it receives a Config (which the config package embeds and checks
// with Validate) and returns decisions and connections.
package policy
