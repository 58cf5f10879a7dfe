// Package stepca is a small HTTP client for the parts of step-ca's API that
// SLAPENIR uses: GET /root/{sha256} and /roots (trust bootstrap), POST /sign
// (enrollment with a one-time token), POST /renew (mTLS with the current
// certificate), GET /provisioners (for minting tokens) and GET /health.
//
// It owns the wire format and the trust rule: nothing is sent to the CA over a
// connection that is not verified against a pinned root. It must not decide
// when to enroll or renew (package enroll does) nor write files.
package stepca
