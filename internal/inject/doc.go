// Package inject swaps placeholder tokens for real credential values in
// bytes going from the agent to the world: the agent → world direction of
// SLAPENIR's zero-knowledge credentials.
//
// It owns the byte-level replacement only: a streaming Writer for bodies,
// a one-shot Replace for URLs and header values, and Basic for
// "Authorization: Basic" credentials, which must be decoded before the
// placeholder is visible. Which placeholders may be replaced for a given
// destination is the caller's decision, passed in as an allow function;
// this package reports which were injected and which were seen but refused,
// so the caller can audit them by name.
//
// It must not decide hosts, read configuration or the vault, or log: values
// never leave it except in the output stream, and never appear in errors.
package inject
