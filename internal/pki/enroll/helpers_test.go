package enroll_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/token"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

var sprintf = fmt.Sprintf

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
