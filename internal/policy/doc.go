// Package policy decides whether a request may leave the proxy: by name
// (deny list, telemetry list, allow list, CONNECT ports, default; rules
// narrowed to methods and paths for a request seen whole) and, after DNS,
// by address and port (loopback, private, link-local, CGNAT, metadata and
// other non-public ranges unless private_allow names them, an entry with a
// port opening that port alone). Its Dialer resolves, checks and dials
// exactly the address it checked, so a name cannot be rebound to a private
// address between the check and the connection.
//
// Rules fail closed: a path is judged as sent (still escaped), and one that
// upstreams may read in more than one way (dot or empty segments, encoded
// dots or slashes, backslashes, ";") matches every deny rule and no allow
// rule; a deny rule matches a method in any case, an allow rule only
// exactly.
//
// Every Decision carries a stable snake_case reason for the audit log. The
// package must not write audit records, answer HTTP, or read configuration
// files: it receives a Config (which the config package embeds and checks
// with Validate) and returns decisions and connections.
package policy
