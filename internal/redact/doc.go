// Package redact removes real secrets from byte streams: the world → agent
// direction of SLAPENIR's zero-knowledge credentials.
//
// It owns the byte-level engine only: turning a set of secrets into the
// encoded forms they can take on the wire (raw and hex in any letter case,
// base64 in both alphabets at every alignment, percent-encoding, JSON string
// escapes, HTML character references, UTF-16), finding those forms in a
// stream cut at arbitrary places, and replacing each hit with a fixed
// replacement while passing every other byte through unchanged. A secret
// with line breaks is searched for line by line where a form would hold a
// line break literally, and whole in its escaped forms (shape.go).
//
// When a Writer releases bytes must depend only on the secrets' public
// shape — their lengths, line layout, byte classes and the encodings on —
// and on the bytes as text, never on whether the bytes match a secret: the
// reader of the output is the agent, which does not hold the secrets, and
// release points that followed partial matches made the redactor a prefix
// oracle (shape.go). The time the scan takes is not made independent of the
// values (README, "Side channels").
//
// It must not know about HTTP, the vault, configuration or audit records, and
// it must never log, print or put a secret into an error: callers get counts,
// never values.
package redact
