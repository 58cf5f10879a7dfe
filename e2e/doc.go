// Package e2e holds the end-to-end tests of the whole system: the real
// slapenir binary run as `slapenir up`, with the real step-ca, slapenir init
// as PID 1 of the agent's namespaces, nftables enforcement, the relay, and
// real clients (curl, the Ollama Go client) on the agent's side.
//
// It has no code of its own outside tests and must never be imported. Its
// tests build the binary once (TestMain), talk only to loopback and to the
// namespaces they create, and remove everything they started.
package e2e
