// Package redact removes real secrets from byte streams: the world → agent
// direction of SLAPENIR's zero-knowledge credentials.
//
// It owns the byte-level engine only: turning a set of secrets into the
// encoded forms they can take on the wire (raw, base64 in both alphabets at
// every alignment, hex, percent-encoding, JSON string escapes), finding those
// forms in a stream cut at arbitrary places, and replacing each hit with a
// fixed replacement while passing every other byte through unchanged and as
// early as it is safe to.
//
// It must not know about HTTP, the vault, configuration or audit records, and
// it must never log, print or put a secret into an error: callers get counts,
// never values.
package redact
