// Package dlp finds secret-shaped data in what an agent sends out: cloud
// and SaaS keys of well-known formats, private keys, JWTs, and
// high-entropy values assigned to key-like names. It is SLAPENIR's outbound
// check for the secrets an agent should never hold, let alone send: the
// proxy's own credentials reach the agent only as placeholders, so a real
// key in a request came from somewhere else (a file in the workspace, a
// prompt injection's exfiltration).
//
// It owns the rules and the scanning: whole values (a header, a URL, a
// small body) and streams cut at arbitrary places, where a Reader holds
// back the last Window bytes until it has seen what follows them, so that a
// key split across writes is found before any of it is passed on.
//
// It must not know about HTTP, configuration or audit records, and it must
// never put a matched value in a Finding, an error or a log: callers learn
// which rule matched, never what.
//
// The rules are written here, not taken from a secret-scanning library:
// the ones in Go (gitleaks, trufflehog) are whole applications with their
// own configuration formats and hundreds of rules tuned for scanning git
// history, where a false positive costs a reviewer a glance; on a request
// path it costs a refused request, so the set is small, each rule anchored
// on a documented literal prefix, and every one cites its format's source
// (rules.go).
package dlp
