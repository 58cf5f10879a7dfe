// Package devca is the development CA the proxy embeds so it starts with mTLS
// even when no step-ca is configured: a root kept in the proxy's state
// directory, issuing the proxy's short-lived server certificate and the client
// certificates `slapenir certs dev-issue` hands out.
//
// It owns the CA's files (state/dev-ca/root_ca.pem and root_ca_key.pem, 0600
// in a 0700 directory) and the templates of what it issues. It must not be
// used when a real CA is configured, and it never sends anything anywhere.
package devca
