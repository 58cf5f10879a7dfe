// Package token mints and reads step-ca one-time tokens (OTTs) for a JWK
// provisioner, the way `step ca token` does, so operators and tests can enroll
// agents without the step CLI.
//
// It owns the token's claims (iss, sub, aud, sans, sha, nbf/iat/exp, jti) and
// the recovery of the provisioner's private key from its encrypted form. It
// must not send anything to a CA: fetching /provisioners is the stepca
// package's job, and a decrypted key never leaves this package's callers'
// memory (nothing here logs it or puts it in an error).
package token
