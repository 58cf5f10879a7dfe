package reload

import (
	"crypto/x509"
	"strings"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// Identity lists the names a client certificate proves: its subject CN, then
// its DNS, URI and e-mail SANs, without duplicates. The first one is the name
// to show in audit records and metric labels.
func Identity(cert *x509.Certificate) []string { return certfile.ClientNames(cert) }

// Allowed reports whether any of ids matches any of globs. A glob's "*"
// matches any run of characters (dots and slashes included) and "?" one
// character; matching ignores case, as DNS names do. No globs means every
// identity the CA vouches for is allowed.
func Allowed(ids []string, globs []string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		for _, id := range ids {
			if globMatch(strings.ToLower(g), strings.ToLower(id)) {
				return true
			}
		}
	}
	return false
}

// globMatch is the iterative wildcard match with single-star backtracking:
// linear in practice, no recursion, no regexp compilation per call.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
