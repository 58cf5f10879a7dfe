// Package enroll decides when an agent (or the proxy) gets and renews its
// certificate from step-ca, and keeps the certificate directory consistent.
//
// It owns: bootstrap (one-time token → key, CSR, /sign → cert.pem, key.pem,
// root_ca.pem, idempotently), renewal (when a third of the lifetime remains,
// with jitter, forced by SIGHUP, followed by a hook), retries while the CA is
// down, and turning step-ca's terse refusals into one sentence a user can act
// on. It must not speak HTTP itself (package stepca does) nor print: progress
// goes to the Logf function its caller passes.
package enroll
