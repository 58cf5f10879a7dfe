package token

import (
	"fmt"
	"strings"

	"go.step.sm/crypto/jose"
)

// ParseUnverified reads a token's claims without checking its signature. Only
// the CA can verify it; the client reads it to learn the subject and SANs to
// put in the CSR, the root fingerprint to trust, and to explain in advance why
// the CA would refuse it (expired, other provisioner, clock skew).
func ParseUnverified(tok string) (Claims, error) {
	var c Claims
	tok = strings.TrimSpace(tok)
	jwt, err := jose.ParseSigned(tok)
	if err != nil {
		return c, fmt.Errorf("token: STEP_TOKEN is not a JWT (%d characters; expected three dot-separated parts as printed by `slapenir certs token` or `step ca token`): %w", len(tok), jose.TrimPrefix(err))
	}
	if err := jwt.UnsafeClaimsWithoutVerification(&c); err != nil {
		return c, fmt.Errorf("token: cannot read the token's claims: %w", jose.TrimPrefix(err))
	}
	return c, nil
}
