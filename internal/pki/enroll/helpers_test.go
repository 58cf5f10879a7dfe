package enroll_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/slapenir/slapenir/internal/pki/token"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

var sprintf = fmt.Sprintf

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// tokenWithoutSHA mints a valid token that carries no root fingerprint, as an
// operator's older tooling might.
func tokenWithoutSHA(t *testing.T, ca *stepca.CA, subject string) string {
	t.Helper()
	tok, err := token.Mint(token.Request{Key: ca.SigningKey(ca.Provisioner), Provisioner: ca.Provisioner, CAURL: ca.URL, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
