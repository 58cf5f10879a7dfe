package enroll

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/pki/token"
)

// step-ca's answers are generic; the explanation must come from what the
// client can see. These cases cannot be produced by a correctly running CA
// on one machine (a skewed CA clock), so they are checked on the answer.
func TestExplainSign(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	claims := token.Claims{SANs: []string{"agent-1"}}
	claims.Subject = "agent-1"
	cases := []struct {
		name string
		err  *stepca.APIError
		want string
	}{
		{"CA clock ahead", &stepca.APIError{Status: 401, Date: now.Add(10 * time.Minute), URL: "https://ca/sign"}, "is 10m0s ahead of"},
		{"CA clock behind", &stepca.APIError{Status: 401, Date: now.Add(-3 * time.Minute)}, "is 3m0s behind"},
		{"reused token", &stepca.APIError{Status: 401, Date: now.Add(2 * time.Second), URL: "https://ca/sign"}, "already used"},
		{"policy", &stepca.APIError{Status: http.StatusForbidden}, "policy forbids"},
		{"bad request", &stepca.APIError{Status: 400, Message: "notAfter is too long"}, "notAfter is too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := explainSign(tc.err, claims, "agent-provisioner", now)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "certificate authority logs") {
				t.Errorf("%q repeats step-ca's generic message", err)
			}
			var apiErr *stepca.APIError
			if !errors.As(err, &apiErr) {
				t.Error("the CA's answer is not reachable through errors.As")
			}
		})
	}
	if err := explainSign(errors.New("other"), claims, "p", now); err.Error() != "other" {
		t.Errorf("a non-API error was rewritten: %v", err)
	}
}
