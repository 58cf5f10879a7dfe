// Package hostport parses and normalises the names the proxy makes decisions
// on: "host:port" authorities (CONNECT lines, Host headers, dial addresses),
// X-Target-URL values, and the host globs of the egress policy.
//
// It owns syntax only: every function here is pure, so the proxy, the policy
// and the config validator agree on what a host is. It must not resolve
// names, decide whether a destination is allowed, or know about HTTP beyond
// the shape of a URL.
package hostport
