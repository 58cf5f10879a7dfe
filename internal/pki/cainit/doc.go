// Package cainit creates a step-ca configuration from nothing, in Go: a root
// and an intermediate CA (P-256), JWK provisioners whose private keys are
// encrypted under a password (as step-ca keeps them), and the ca.json that
// step-ca reads. It is what the container's CA runs on its first start
// (slapenir ca run), and what the tests' real step-ca is set up with, so
// that no `step ca init` (a binary this project does not ship) is needed.
//
// It must not start step-ca or mint tokens (the ca command and package
// token do), and it never writes a password or key anywhere but Dir, with
// mode 0600.
package cainit
